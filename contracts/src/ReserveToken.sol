// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @title ReserveToken: a TEST ERC-20 standing for a tokenized reserve asset in demos.
/// @notice Not a real asset. The owner (the demo deployer) can mint so that demos and tests
///         can fund vaults; everything else is OpenZeppelin's audited ERC-20.
contract ReserveToken is ERC20, Ownable {
    constructor(string memory name_, string memory symbol_, uint256 initialSupply, address holder)
        ERC20(name_, symbol_)
        Ownable(msg.sender)
    {
        _mint(holder, initialSupply);
    }

    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }
}
