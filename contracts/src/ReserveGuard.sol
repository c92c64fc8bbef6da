// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// The Safe v1.4.1 transaction guard interface (GuardManager.sol), restated here so that the
/// project's contracts compile on their own. Safe's `Enum.Operation` is ABI-encoded as uint8,
/// so the interface id is the same 0xe6d7a83a that `Safe.setGuard` checks.
interface ISafeGuard {
    function checkTransaction(
        address to,
        uint256 value,
        bytes memory data,
        uint8 operation,
        uint256 safeTxGas,
        uint256 baseGas,
        uint256 gasPrice,
        address gasToken,
        address payable refundReceiver,
        bytes memory signatures,
        address msgSender
    ) external;

    function checkAfterExecution(bytes32 txHash, bool success) external;
}

interface IERC165Minimal {
    function supportsInterface(bytes4 interfaceId) external view returns (bool);
}

/// The two Safe v1.4.1 reads the guard needs to name the transaction it is asked about.
interface ISafeTransactionHash {
    function nonce() external view returns (uint256);

    function getTransactionHash(
        address to,
        uint256 value,
        bytes calldata data,
        uint8 operation,
        uint256 safeTxGas,
        uint256 baseGas,
        uint256 gasPrice,
        address gasToken,
        address refundReceiver,
        uint256 nonce_
    ) external view returns (bytes32);
}

/// @title ReserveGuard: the custody policy's second line of defence, enforced on chain.
/// @notice Set as the transaction guard of one reserve Safe. Every Safe transaction is
///         checked before it runs: outgoing ETH and ERC-20 transfers must go to an
///         allowlisted destination and stay within the asset's per-transaction limit and its
///         rolling 24-hour limit, and nothing moves while the vault is frozen. Every Safe
///         transaction, administrative ones included, must also have been registered as
///         released by the service's registrar account, which does so only when the ledger
///         releases it: the owners' signatures alone move nothing. The registrar mirrors the
///         ledger's freeze here in the same step, and only the registrar unfreezes, after the
///         ledger records the unfreeze quorum; the Safe may freeze (the safe direction) but
///         not unfreeze. Limits and the allowlist change only through the Safe itself (so they
///         need the owners' threshold and a released hash), and calls to this guard or to the
///         Safe stay possible while frozen, e.g. to replace a lost owner key. The one Safe
///         transaction that needs no release is `freeze()` on this guard. Delegate calls,
///         module activation and gas refunds are refused because each could move funds
///         around these checks.
contract ReserveGuard is ISafeGuard, IERC165Minimal {
    struct AssetLimits {
        bool configured;
        uint256 perTransaction;
        uint256 daily;
    }

    /// Rolling window: 24 hourly buckets per asset. A spend is counted against every
    /// later transaction for the next 24 hours, at hour granularity.
    uint256 public constant WINDOW_SECONDS = 24 hours;
    uint256 public constant BUCKET_SECONDS = 1 hours;
    uint256 private constant BUCKETS = 24;
    /// The pseudo-address under which ETH limits are stored.
    address public constant ETH = address(0);

    bytes4 private constant ERC20_TRANSFER = 0xa9059cbb; // transfer(address,uint256)
    bytes4 private constant SAFE_ENABLE_MODULE = 0x610b5925; // enableModule(address)

    address public immutable safe;
    /// The service's account that mirrors the ledger: freezes, unfreezes, releases.
    address public immutable registrar;
    bool public frozen;
    /// Safe transaction hashes (EIP-712 safeTxHash) the ledger released.
    mapping(bytes32 => bool) public isReleased;
    mapping(address => bool) public isAllowlisted;
    mapping(address => AssetLimits) private limits;
    mapping(address => uint256[24]) private bucketAmounts;
    mapping(address => uint256[24]) private bucketHours;

    event DestinationSet(address indexed destination, bool allowed);
    event AssetLimitsSet(address indexed asset, uint256 perTransaction, uint256 daily);
    event Frozen();
    event Unfrozen();
    event Spent(address indexed asset, address indexed destination, uint256 amount);
    event Released(bytes32 indexed safeTxHash);

    error NotSafe(address caller);
    error NotRegistrar(address caller);
    error NotSafeOrRegistrar(address caller);
    error NotReleased(bytes32 safeTxHash);
    error AlreadyReleased(bytes32 safeTxHash);
    error ZeroHash();
    error ZeroAddress();
    error LengthMismatch();
    error VaultFrozen();
    error DelegateCallNotAllowed();
    error GasRefundNotAllowed();
    error ModuleNotAllowed();
    error ValueWithCallData();
    error UnsupportedCall(address to, bytes4 selector);
    error AssetNotConfigured(address asset);
    error DestinationNotAllowlisted(address destination);
    error AmountOverTransactionLimit(address asset, uint256 amount, uint256 limit);
    error DailyLimitExceeded(address asset, uint256 spentInWindow, uint256 amount, uint256 limit);
    error InvalidLimits(uint256 perTransaction, uint256 daily);

    modifier onlySafe() {
        if (msg.sender != safe) revert NotSafe(msg.sender);
        _;
    }

    modifier onlyRegistrar() {
        if (msg.sender != registrar) revert NotRegistrar(msg.sender);
        _;
    }

    /// The initial configuration is fixed at deployment; it takes effect only when the Safe's
    /// owners set this guard through a Safe transaction signed at their threshold.
    constructor(
        address safe_,
        address registrar_,
        address[] memory destinations,
        address[] memory assets,
        uint256[] memory perTransaction,
        uint256[] memory daily
    ) {
        if (safe_ == address(0) || registrar_ == address(0)) revert ZeroAddress();
        if (assets.length != perTransaction.length || assets.length != daily.length) {
            revert LengthMismatch();
        }
        safe = safe_;
        registrar = registrar_;
        for (uint256 i = 0; i < destinations.length; i++) {
            _setDestination(destinations[i], true);
        }
        for (uint256 i = 0; i < assets.length; i++) {
            _setLimits(assets[i], perTransaction[i], daily[i]);
        }
    }

    // ---- configuration: only through the Safe ----

    function setDestination(address destination, bool allowed) external onlySafe {
        _setDestination(destination, allowed);
    }

    function setAssetLimits(address asset, uint256 perTransaction, uint256 daily)
        external
        onlySafe
    {
        _setLimits(asset, perTransaction, daily);
    }

    // ---- the ledger's mirror: the registrar (freezing also through the Safe) ----

    /// Freezing is the safe direction, so the Safe's owners may do it too.
    function freeze() external {
        if (msg.sender != registrar && msg.sender != safe) revert NotSafeOrRegistrar(msg.sender);
        frozen = true;
        emit Frozen();
    }

    /// Only the registrar, which calls it once the ledger has recorded the unfreeze quorum.
    function unfreeze() external onlyRegistrar {
        frozen = false;
        emit Unfrozen();
    }

    /// Registers a Safe transaction hash the ledger released; a hash is registered once.
    function release(bytes32 safeTxHash) external onlyRegistrar {
        if (safeTxHash == bytes32(0)) revert ZeroHash();
        if (isReleased[safeTxHash]) revert AlreadyReleased(safeTxHash);
        isReleased[safeTxHash] = true;
        emit Released(safeTxHash);
    }

    // ---- reads ----

    function assetLimits(address asset) external view returns (AssetLimits memory) {
        return limits[asset];
    }

    function spentInWindow(address asset) public view returns (uint256 total) {
        uint256 hour = block.timestamp / BUCKET_SECONDS;
        for (uint256 i = 0; i < BUCKETS; i++) {
            // A bucket counts if it was written within the last 24 hours (this one included).
            if (bucketHours[asset][i] + BUCKETS > hour) total += bucketAmounts[asset][i];
        }
    }

    function supportsInterface(bytes4 interfaceId) external pure returns (bool) {
        return interfaceId == type(ISafeGuard).interfaceId
            || interfaceId == type(IERC165Minimal).interfaceId;
    }

    // ---- the guard ----

    function checkTransaction(
        address to,
        uint256 value,
        bytes memory data,
        uint8 operation,
        uint256 safeTxGas,
        uint256 baseGas,
        uint256 gasPrice,
        address gasToken,
        address payable refundReceiver,
        bytes memory,
        address
    ) external override onlySafe {
        if (operation != 0) revert DelegateCallNotAllowed();
        // Zero safeTxGas and gasPrice make the Safe revert when the inner call fails, so a
        // counted spend always happened, and no refund can pay ETH out around the limits.
        if (safeTxGas != 0 || gasPrice != 0) revert GasRefundNotAllowed();
        if (to == address(this) || to == safe) {
            _checkAdministrative(to, value, data);
            // The owners may always freeze on their own: it only ever stops value moving.
            if (to == address(this) && _isFreezeCall(data)) return;
            _requireReleased(_safeTxHash(to, value, data, baseGas, gasToken, refundReceiver));
            return;
        }
        if (frozen) revert VaultFrozen();
        _requireReleased(_safeTxHash(to, value, data, baseGas, gasToken, refundReceiver));
        _spendTransfer(to, value, data);
    }

    function checkAfterExecution(bytes32, bool) external view override onlySafe {}

    // ---- internals ----

    /// The hash the owners signed. Safe v1.4.1 increments its nonce before calling the
    /// guard, so the transaction being checked is the one at nonce - 1. Operation,
    /// safeTxGas and gasPrice are zero here: checkTransaction refused anything else.
    function _safeTxHash(
        address to,
        uint256 value,
        bytes memory data,
        uint256 baseGas,
        address gasToken,
        address refundReceiver
    ) private view returns (bytes32) {
        ISafeTransactionHash account = ISafeTransactionHash(safe);
        return account.getTransactionHash(
            to, value, data, 0, 0, baseGas, 0, gasToken, refundReceiver, account.nonce() - 1
        );
    }

    function _isFreezeCall(bytes memory data) private pure returns (bool) {
        return data.length == 4 && bytes4(data) == this.freeze.selector;
    }

    function _requireReleased(bytes32 safeTxHash) private view {
        if (!isReleased[safeTxHash]) revert NotReleased(safeTxHash);
    }

    function _spendTransfer(address to, uint256 value, bytes memory data) private {
        (address asset, address destination, uint256 amount) = _transferOf(to, value, data);
        _spend(asset, destination, amount);
    }

    function _checkAdministrative(address to, uint256 value, bytes memory data) private view {
        if (value != 0) revert ValueWithCallData();
        // Modules execute without the guard, so enabling one would switch these checks off.
        if (to == safe && data.length >= 4 && bytes4(data) == SAFE_ENABLE_MODULE) {
            revert ModuleNotAllowed();
        }
    }

    function _transferOf(address to, uint256 value, bytes memory data)
        private
        pure
        returns (address asset, address destination, uint256 amount)
    {
        if (data.length == 0) return (ETH, to, value);
        if (value != 0) revert ValueWithCallData();
        bytes4 selector = data.length >= 4 ? bytes4(data) : bytes4(0);
        if (selector != ERC20_TRANSFER || data.length != 68) revert UnsupportedCall(to, selector);
        uint256 recipientWord;
        assembly {
            recipientWord := mload(add(data, 36))
            amount := mload(add(data, 68))
        }
        // Reject dirty upper bits so the guard and the token agree on the recipient.
        if (recipientWord >> 160 != 0) revert UnsupportedCall(to, selector);
        return (to, address(uint160(recipientWord)), amount);
    }

    function _spend(address asset, address destination, uint256 amount) private {
        AssetLimits memory assetLimit = limits[asset];
        if (!assetLimit.configured) revert AssetNotConfigured(asset);
        if (!isAllowlisted[destination]) revert DestinationNotAllowlisted(destination);
        if (amount > assetLimit.perTransaction) {
            revert AmountOverTransactionLimit(asset, amount, assetLimit.perTransaction);
        }
        uint256 spent = spentInWindow(asset);
        if (spent + amount > assetLimit.daily) {
            revert DailyLimitExceeded(asset, spent, amount, assetLimit.daily);
        }
        uint256 hour = block.timestamp / BUCKET_SECONDS;
        uint256 slot = hour % BUCKETS;
        if (bucketHours[asset][slot] != hour) {
            bucketHours[asset][slot] = hour;
            bucketAmounts[asset][slot] = 0;
        }
        bucketAmounts[asset][slot] += amount;
        emit Spent(asset, destination, amount);
    }

    function _setDestination(address destination, bool allowed) private {
        if (destination == address(0)) revert ZeroAddress();
        isAllowlisted[destination] = allowed;
        emit DestinationSet(destination, allowed);
    }

    function _setLimits(address asset, uint256 perTransaction, uint256 daily) private {
        if (perTransaction > daily) revert InvalidLimits(perTransaction, daily);
        limits[asset] = AssetLimits({configured: true, perTransaction: perTransaction, daily: daily});
        emit AssetLimitsSet(asset, perTransaction, daily);
    }
}
