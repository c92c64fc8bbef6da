// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title ReserveRegistry: an append-only public record of the reserve ledger's state.
/// @notice The ledger's checkpoints (tree size, RFC 9162 root hash) and the hashes of signed
///         reconciliation reports are anchored here so that anyone can later check that the
///         ledger they are shown is the one that existed at the time. Only registered
///         anchoring keys may append. Nothing can be edited or deleted: there is no function
///         for it. Checkpoint tree sizes must strictly increase, so a rolled-back or forked
///         ledger cannot be anchored after a larger one.
contract ReserveRegistry {
    struct Checkpoint {
        uint64 treeSize;
        bytes32 rootHash;
        uint64 timestamp;
        uint64 blockNumber;
        address anchorer;
    }

    struct Report {
        bytes32 reportHash;
        uint64 ledgerTreeSize;
        uint64 timestamp;
        uint64 blockNumber;
        address anchorer;
    }

    /// The account that registers and retires anchoring keys (a Safe in production).
    address public immutable admin;

    mapping(address => bool) public isAnchorer;
    mapping(bytes32 => bool) public isReportAnchored;
    Checkpoint[] private checkpoints;
    Report[] private reports;

    event AnchorerAdded(address indexed anchorer);
    event AnchorerRemoved(address indexed anchorer);
    event CheckpointAnchored(
        uint256 indexed index, uint64 treeSize, bytes32 rootHash, address indexed anchorer
    );
    event ReportAnchored(
        uint256 indexed index, bytes32 indexed reportHash, uint64 ledgerTreeSize,
        address indexed anchorer
    );

    error NotAdmin(address caller);
    error NotAnchorer(address caller);
    error ZeroAddress();
    error AnchorerAlreadyRegistered(address anchorer);
    error AnchorerNotRegistered(address anchorer);
    error TreeSizeNotIncreasing(uint64 latestTreeSize, uint64 givenTreeSize);
    error ZeroRootHash();
    error ZeroReportHash();
    error ReportAlreadyAnchored(bytes32 reportHash);
    error IndexOutOfRange(uint256 index, uint256 count);
    error NoCheckpoints();

    constructor(address admin_) {
        if (admin_ == address(0)) revert ZeroAddress();
        admin = admin_;
    }

    modifier onlyAdmin() {
        if (msg.sender != admin) revert NotAdmin(msg.sender);
        _;
    }

    modifier onlyAnchorer() {
        if (!isAnchorer[msg.sender]) revert NotAnchorer(msg.sender);
        _;
    }

    function addAnchorer(address anchorer) external onlyAdmin {
        if (anchorer == address(0)) revert ZeroAddress();
        if (isAnchorer[anchorer]) revert AnchorerAlreadyRegistered(anchorer);
        isAnchorer[anchorer] = true;
        emit AnchorerAdded(anchorer);
    }

    /// Retiring a key stops future appends; what it anchored stays.
    function removeAnchorer(address anchorer) external onlyAdmin {
        if (!isAnchorer[anchorer]) revert AnchorerNotRegistered(anchorer);
        isAnchorer[anchorer] = false;
        emit AnchorerRemoved(anchorer);
    }

    function anchorCheckpoint(uint64 treeSize, bytes32 rootHash)
        external
        onlyAnchorer
        returns (uint256 index)
    {
        uint64 latest = checkpoints.length == 0 ? 0 : checkpoints[checkpoints.length - 1].treeSize;
        if (treeSize <= latest) revert TreeSizeNotIncreasing(latest, treeSize);
        if (rootHash == bytes32(0)) revert ZeroRootHash();
        index = checkpoints.length;
        checkpoints.push(Checkpoint({
            treeSize: treeSize,
            rootHash: rootHash,
            timestamp: uint64(block.timestamp),
            blockNumber: uint64(block.number),
            anchorer: msg.sender
        }));
        emit CheckpointAnchored(index, treeSize, rootHash, msg.sender);
    }

    function anchorReport(bytes32 reportHash, uint64 ledgerTreeSize)
        external
        onlyAnchorer
        returns (uint256 index)
    {
        if (reportHash == bytes32(0)) revert ZeroReportHash();
        if (isReportAnchored[reportHash]) revert ReportAlreadyAnchored(reportHash);
        isReportAnchored[reportHash] = true;
        index = reports.length;
        reports.push(Report({
            reportHash: reportHash,
            ledgerTreeSize: ledgerTreeSize,
            timestamp: uint64(block.timestamp),
            blockNumber: uint64(block.number),
            anchorer: msg.sender
        }));
        emit ReportAnchored(index, reportHash, ledgerTreeSize, msg.sender);
    }

    function checkpointCount() external view returns (uint256) {
        return checkpoints.length;
    }

    function checkpointAt(uint256 index) external view returns (Checkpoint memory) {
        if (index >= checkpoints.length) revert IndexOutOfRange(index, checkpoints.length);
        return checkpoints[index];
    }

    function latestCheckpoint() external view returns (uint256 index, Checkpoint memory) {
        if (checkpoints.length == 0) revert NoCheckpoints();
        index = checkpoints.length - 1;
        return (index, checkpoints[index]);
    }

    function reportCount() external view returns (uint256) {
        return reports.length;
    }

    function reportAt(uint256 index) external view returns (Report memory) {
        if (index >= reports.length) revert IndexOutOfRange(index, reports.length);
        return reports[index];
    }
}
