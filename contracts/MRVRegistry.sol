// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

/// @title MRVRegistry
/// @notice Anchors the SHA-256 fingerprints of MRV records (energy/CO2 of ML training runs)
/// so that anyone can later check that a record is unchanged.
/// @dev Squatting defence: a registration is keyed by (submitter, mrvId). The first
/// registrant of an ID is kept in `_first` and returned by the seed's `getMRVHash`; any
/// other address registering the same ID gets its own entry in `_claims` instead of being
/// blocked, so a squatter who sees a pending transaction cannot stop the honest registrant,
/// and verifiers ask for the entry of the submitter they expect (`getMRVHashBy`).
/// Merkle batches are keyed by (submitter, root) for the same reason.
contract MRVRegistry {
    /// @dev One registration, packed into 2 slots: the hash, then timestamp + submitter.
    struct Registration {
        bytes32 hash;
        uint64 timestamp;
        address submitter;
    }

    /// @dev One anchored Merkle batch, packed into 1 slot.
    struct Batch {
        uint64 timestamp;
        uint32 leafCount;
        address submitter;
    }

    /// @dev First registrant of each ID, keyed by keccak256(bytes(mrvId)).
    mapping(bytes32 idKey => Registration) private _first;

    /// @dev Later registrants of an ID, keyed by keccak256(abi.encode(submitter, idKey)).
    mapping(bytes32 claimKey => Registration) private _claims;

    /// @dev Anchored batches, keyed by keccak256(abi.encode(submitter, root)).
    mapping(bytes32 batchKey => Batch) private _batches;

    /// @notice A record fingerprint was registered.
    /// @param idKey keccak256 of the UTF-8 bytes of `mrvId` (indexed so logs can be filtered by ID).
    /// @param submitter The address that registered it.
    /// @param hash The record's SHA-256 fingerprint.
    /// @param mrvId The record's MRV ID.
    /// @param timestamp The block timestamp of the registration.
    event MRVRegistered(
        bytes32 indexed idKey, address indexed submitter, bytes32 indexed hash, string mrvId, uint256 timestamp
    );

    /// @notice A Merkle root over a batch of record fingerprints was anchored.
    /// @param root The OpenZeppelin StandardMerkleTree root (leaf encoding ["bytes32"]).
    /// @param submitter The address that anchored it.
    /// @param leafCount The number of records in the batch.
    /// @param timestamp The block timestamp of the anchoring.
    event BatchAnchored(bytes32 indexed root, address indexed submitter, uint32 leafCount, uint256 timestamp);

    /// @notice The MRV ID is the empty string.
    error MRVEmptyId();

    /// @notice The hash is zero (zero marks "not registered", so it cannot be stored).
    error MRVZeroHash();

    /// @notice `submitter` has already registered `mrvId`; registrations are never overwritten.
    /// @param mrvId The MRV ID.
    /// @param submitter The address that tried to register it again.
    error MRVAlreadyRegistered(string mrvId, address submitter);

    /// @notice The Merkle root is zero.
    error MRVBatchZeroRoot();

    /// @notice The batch has no leaves.
    error MRVBatchEmpty();

    /// @notice `submitter` has already anchored `root`; batches are never overwritten.
    /// @param root The Merkle root.
    /// @param submitter The address that tried to anchor it again.
    error MRVBatchAlreadyAnchored(bytes32 root, address submitter);

    /// @notice Registers the fingerprint `hash` of the record `mrvId` for the caller.
    /// @dev The first registrant of an ID fills the entry `getMRVHash` returns; later
    /// registrants (other addresses) get their own entry, read with `getMRVHashBy`.
    /// Reverts with MRVEmptyId, MRVZeroHash, or MRVAlreadyRegistered when the caller has
    /// already registered this ID.
    /// @param mrvId The record's MRV ID (non-empty).
    /// @param hash The record's SHA-256 fingerprint (non-zero).
    function registerMRV(string calldata mrvId, bytes32 hash) external {
        if (bytes(mrvId).length == 0) revert MRVEmptyId();
        if (hash == bytes32(0)) revert MRVZeroHash();
        bytes32 idKey = keccak256(bytes(mrvId));
        Registration storage first = _first[idKey];
        Registration storage entry;
        if (first.hash == bytes32(0)) {
            entry = first;
        } else {
            if (first.submitter == msg.sender) revert MRVAlreadyRegistered(mrvId, msg.sender);
            entry = _claims[_claimKey(msg.sender, idKey)];
            if (entry.hash != bytes32(0)) revert MRVAlreadyRegistered(mrvId, msg.sender);
        }
        entry.hash = hash;
        entry.timestamp = uint64(block.timestamp);
        entry.submitter = msg.sender;
        emit MRVRegistered(idKey, msg.sender, hash, mrvId, block.timestamp);
    }

    /// @notice Returns the first registration of `mrvId` (the seed's interface).
    /// @dev A view: it costs nothing when called and emits no event. The seed's
    /// `MRVQueried` event is dropped on purpose: a view cannot emit, and an event would
    /// turn every verification into a paid transaction that publishes who checked what.
    /// Verifiers that know the expected submitter should call `getMRVHashBy` instead.
    /// @param mrvId The record's MRV ID.
    /// @return hash The fingerprint (zero when not registered).
    /// @return timestamp The block timestamp of the registration (zero when not registered).
    /// @return submitter The first registrant (zero address when not registered).
    function getMRVHash(string calldata mrvId)
        external
        view
        returns (bytes32 hash, uint256 timestamp, address submitter)
    {
        Registration storage entry = _first[keccak256(bytes(mrvId))];
        return (entry.hash, entry.timestamp, entry.submitter);
    }

    /// @notice Returns the registration of `mrvId` made by `submitter`.
    /// @param mrvId The record's MRV ID.
    /// @param submitter The expected registrant.
    /// @return hash The fingerprint (zero when `submitter` did not register `mrvId`).
    /// @return timestamp The block timestamp of the registration (zero when none).
    function getMRVHashBy(string calldata mrvId, address submitter)
        external
        view
        returns (bytes32 hash, uint256 timestamp)
    {
        Registration storage entry = _entryOf(mrvId, submitter);
        return (entry.hash, entry.timestamp);
    }

    /// @notice Whether anyone has registered `mrvId`.
    /// @param mrvId The record's MRV ID.
    /// @return True when the ID has a first registrant.
    function isMRVRegistered(string calldata mrvId) external view returns (bool) {
        return _first[keccak256(bytes(mrvId))].hash != bytes32(0);
    }

    /// @notice Whether the first registration of `mrvId` holds `expectedHash`.
    /// @param mrvId The record's MRV ID.
    /// @param expectedHash The fingerprint recomputed from the record.
    /// @return True when registered with exactly that hash.
    function verifyMRVHash(string calldata mrvId, bytes32 expectedHash) external view returns (bool) {
        bytes32 stored = _first[keccak256(bytes(mrvId))].hash;
        return stored != bytes32(0) && stored == expectedHash;
    }

    /// @notice Whether `submitter` registered `mrvId` with `expectedHash`.
    /// @param mrvId The record's MRV ID.
    /// @param submitter The expected registrant.
    /// @param expectedHash The fingerprint recomputed from the record.
    /// @return True when that submitter registered exactly that hash.
    function verifyMRVHashBy(string calldata mrvId, address submitter, bytes32 expectedHash)
        external
        view
        returns (bool)
    {
        bytes32 stored = _entryOf(mrvId, submitter).hash;
        return stored != bytes32(0) && stored == expectedHash;
    }

    /// @notice Anchors the Merkle root `root` of a batch of `leafCount` record fingerprints.
    /// @dev Reverts with MRVBatchZeroRoot, MRVBatchEmpty, or MRVBatchAlreadyAnchored when
    /// the caller has already anchored this root.
    /// @param root The OpenZeppelin StandardMerkleTree root (leaf encoding ["bytes32"]).
    /// @param leafCount The number of records in the batch (non-zero).
    function anchorBatch(bytes32 root, uint32 leafCount) external {
        if (root == bytes32(0)) revert MRVBatchZeroRoot();
        if (leafCount == 0) revert MRVBatchEmpty();
        Batch storage batch = _batches[_claimKey(msg.sender, root)];
        if (batch.timestamp != 0) revert MRVBatchAlreadyAnchored(root, msg.sender);
        batch.timestamp = uint64(block.timestamp);
        batch.leafCount = leafCount;
        batch.submitter = msg.sender;
        emit BatchAnchored(root, msg.sender, leafCount, block.timestamp);
    }

    /// @notice Returns the batch `root` anchored by `submitter`.
    /// @param root The Merkle root.
    /// @param submitter The expected anchoring address.
    /// @return timestamp The block timestamp of the anchoring (zero when not anchored).
    /// @return leafCount The number of records in the batch (zero when not anchored).
    function getBatch(bytes32 root, address submitter) external view returns (uint256 timestamp, uint32 leafCount) {
        Batch storage batch = _batches[_claimKey(submitter, root)];
        return (batch.timestamp, batch.leafCount);
    }

    /// @notice Whether `recordHash` is a leaf of the batch `root` anchored by `submitter`.
    /// @dev Leaf encoding of OpenZeppelin's StandardMerkleTree for ["bytes32"]:
    /// keccak256(bytes.concat(keccak256(abi.encode(recordHash)))), sorted pairs.
    /// @param root The Merkle root.
    /// @param submitter The expected anchoring address.
    /// @param recordHash The record's SHA-256 fingerprint.
    /// @param proof The sibling hashes from leaf to root.
    /// @return True when the batch exists and the proof is valid.
    function verifyBatchProof(bytes32 root, address submitter, bytes32 recordHash, bytes32[] calldata proof)
        external
        view
        returns (bool)
    {
        if (_batches[_claimKey(submitter, root)].timestamp == 0) return false;
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(recordHash))));
        return MerkleProof.verifyCalldata(proof, root, leaf);
    }

    /// @dev The entry `submitter` made for `mrvId`: the first-registrant slot when it is
    /// theirs, otherwise their claim (all zero when they never registered it).
    function _entryOf(string calldata mrvId, address submitter) private view returns (Registration storage) {
        bytes32 idKey = keccak256(bytes(mrvId));
        Registration storage first = _first[idKey];
        if (first.submitter == submitter && first.hash != bytes32(0)) return first;
        return _claims[_claimKey(submitter, idKey)];
    }

    /// @dev Key of a (submitter, key) pair in `_claims` and `_batches`.
    function _claimKey(address submitter, bytes32 key) private pure returns (bytes32) {
        return keccak256(abi.encode(submitter, key));
    }
}
