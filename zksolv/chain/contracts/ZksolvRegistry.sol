// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title zksolv registry: one bundle per operator and epoch, public.
/// @notice The rules are docs/registry.md. An operator (an Ethereum address)
/// first registers the Ed25519 key that signs its bundles, with that key's
/// signature over the binding statement
///     "zksolv/registry-binding/v1" || chainId (32 bytes, big-endian)
///       || this contract's address (20 bytes) || the operator's address (20 bytes)
/// The contract stores the key and the signature but cannot check an Ed25519
/// signature at a reasonable cost: every off-chain verifier checks it, and
/// ignores the posts of an address whose signature does not verify.
/// Then the operator posts, once per epoch, the bundle hash (SHA-256 of the
/// bundle's manifest.json), the root hash, the header digest, the digest of the
/// root commitments and the link to the previous bundle exactly as the bundle
/// states them. An entry never changes; a second post for an epoch reverts
/// (the same bundle again is a no-op); epochs strictly increase; each post
/// links to the operator's previous post. Anyone may then prove the entry
/// solvent: `proveSolvent` checks the bundle's two solvency proofs against
/// the posted header digest, root hash and root commitments with the
/// ZksolvSolvencyVerifier, and records the result.
interface IZksolvSolvencyVerifier {
    function verify(
        bytes calldata header,
        bytes32 rootHash,
        bytes calldata roots,
        bytes calldata solvency,
        bytes calldata points,
        bytes calldata gens
    ) external view returns (bytes32 digest);
}

contract ZksolvRegistry {
    struct Binding {
        bytes32 key;        // Ed25519 public key (RFC 8032 encoding)
        bytes32 sigR;       // signature over the binding statement: R ...
        bytes32 sigS;       // ... and S
        uint64 block_;      // block of the registration (0: not registered)
    }

    struct Entry {
        bytes32 bundleHash;     // SHA-256 of manifest.json (0: no entry)
        bytes32 rootHash;       // manifest tree.root_hash
        bytes32 headerDigest;   // D, SHA-256 of the epoch header bytes
        bytes32 rootsDigest;    // SHA-256 of the root commitments, 48 bytes each, in column order
        bytes32 prevBundleHash; // manifest prev_bundle_hash (0 when null)
        uint64 prevEpoch;       // manifest prev_epoch (0 when null)
        bool hasPrev;           // prev_bundle_hash is not null
        bool gap;               // hasPrev and prevEpoch < epoch - 1: a declared gap
        bool solvent;           // both solvency proofs checked on chain (proveSolvent)
        uint64 block_;          // block of the post
    }

    /// What an operator posts for an epoch, from its bundle.
    struct Post {
        uint64 epoch;
        bytes32 bundleHash;
        bytes32 rootHash;
        bytes32 headerDigest;
        bytes32 rootsDigest;
        bool hasPrev;
        bytes32 prevBundleHash;
        uint64 prevEpoch;
    }

    string public constant BINDING_LABEL = "zksolv/registry-binding/v1";
    /// The solvency verifier proveSolvent calls (a storage variable, not an
    /// immutable, so that the runtime code is the same in every deployment).
    IZksolvSolvencyVerifier public verifier;

    mapping(address => Binding) private bindings;
    mapping(bytes32 => address[]) private registrants;
    mapping(address => mapping(uint64 => Entry)) private entries;
    mapping(address => uint64) private latest;
    mapping(address => bool) private posted;

    event Registered(address indexed operator, bytes32 indexed key, bytes32 sigR, bytes32 sigS);
    event Posted(
        address indexed operator,
        uint64 indexed epoch,
        bytes32 indexed bundleHash,
        bytes32 rootHash,
        bytes32 prevBundleHash,
        uint64 prevEpoch,
        bool hasPrev,
        bool gap
    );
    event Solvent(address indexed operator, uint64 indexed epoch, bytes32 indexed bundleHash);

    error AlreadyRegistered(address operator, bytes32 key);
    error NotRegistered(address operator);
    error EpochTaken(address operator, uint64 epoch, bytes32 posted, bytes32 offered);
    error EpochNotAfterLatest(address operator, uint64 epoch, uint64 latestEpoch);
    error BadLink(address operator, uint64 epoch, bytes32 expectedHash, uint64 expectedEpoch);
    error BadPrevious(uint64 epoch, uint64 prevEpoch);
    error ZeroHash();
    error NoEntry(address operator, uint64 epoch);
    error NotPosted(string what);

    constructor(IZksolvSolvencyVerifier verifier_) {
        verifier = verifier_;
    }

    /// The bytes the Ed25519 key signs to bind itself to `operator` on this
    /// chain and this registry (98 bytes).
    function bindingStatement(address operator) public view returns (bytes memory) {
        return abi.encodePacked(BINDING_LABEL, block.chainid, address(this), operator);
    }

    /// Bind the sender to an Ed25519 key, once. The signature is stored for
    /// off-chain verifiers; the contract does not check it.
    function register(bytes32 key, bytes32 sigR, bytes32 sigS) external {
        Binding storage b = bindings[msg.sender];
        if (b.block_ != 0) revert AlreadyRegistered(msg.sender, b.key);
        bindings[msg.sender] = Binding(key, sigR, sigS, uint64(block.number));
        registrants[key].push(msg.sender);
        emit Registered(msg.sender, key, sigR, sigS);
    }

    /// Post the sender's bundle for `p.epoch`. `p.hasPrev` false means the
    /// manifest's prev_bundle_hash is null (then prevBundleHash and prevEpoch
    /// must be 0), allowed only for the sender's first post.
    function post(Post calldata p) external {
        if (bindings[msg.sender].block_ == 0) revert NotRegistered(msg.sender);
        if (p.bundleHash == bytes32(0) || p.rootHash == bytes32(0)) revert ZeroHash();
        Entry storage e = entries[msg.sender][p.epoch];
        if (e.bundleHash != bytes32(0)) {
            bool same = e.bundleHash == p.bundleHash && e.rootHash == p.rootHash
                && e.headerDigest == p.headerDigest && e.rootsDigest == p.rootsDigest
                && e.hasPrev == p.hasPrev && e.prevBundleHash == p.prevBundleHash
                && e.prevEpoch == p.prevEpoch;
            if (same) return; // posting the same bundle again changes nothing
            revert EpochTaken(msg.sender, p.epoch, e.bundleHash, p.bundleHash);
        }
        if (p.hasPrev) {
            if (p.prevEpoch >= p.epoch || p.prevBundleHash == bytes32(0)) {
                revert BadPrevious(p.epoch, p.prevEpoch);
            }
        } else if (p.prevEpoch != 0 || p.prevBundleHash != bytes32(0)) {
            revert BadPrevious(p.epoch, p.prevEpoch);
        }
        if (posted[msg.sender]) {
            uint64 last = latest[msg.sender];
            if (p.epoch <= last) revert EpochNotAfterLatest(msg.sender, p.epoch, last);
            bytes32 lastHash = entries[msg.sender][last].bundleHash;
            if (!p.hasPrev || p.prevBundleHash != lastHash || p.prevEpoch != last) {
                revert BadLink(msg.sender, p.epoch, lastHash, last);
            }
        }
        bool gap = p.hasPrev && p.prevEpoch + 1 < p.epoch;
        entries[msg.sender][p.epoch] = Entry(p.bundleHash, p.rootHash, p.headerDigest,
            p.rootsDigest, p.prevBundleHash, p.prevEpoch, p.hasPrev, gap, false,
            uint64(block.number));
        latest[msg.sender] = p.epoch;
        posted[msg.sender] = true;
        emit Posted(msg.sender, p.epoch, p.bundleHash, p.rootHash, p.prevBundleHash,
                    p.prevEpoch, p.hasPrev, gap);
    }

    /// Check the solvency proofs of `operator`'s entry for `epoch` on chain
    /// and record it solvent. Anyone may call it: the header must be the one
    /// posted (its SHA-256 the posted header digest, its operator key the
    /// operator's registered key, its epoch this epoch), the roots the posted
    /// ones, and the proofs are checked against the posted root hash.
    /// Arguments as ZksolvSolvencyVerifier.verify takes them.
    function proveSolvent(
        address operator,
        uint64 epoch,
        bytes calldata header,
        bytes calldata roots,
        bytes calldata solvency,
        bytes calldata points,
        bytes calldata gens
    ) external {
        Entry storage e = entries[operator][epoch];
        if (e.bundleHash == bytes32(0)) revert NoEntry(operator, epoch);
        if (e.solvent) return;
        if (header.length < 62 || bytes32(header[22:54]) != bindings[operator].key
            || uint64(bytes8(header[54:62])) != epoch) revert NotPosted("header operator or epoch");
        if (sha256(header) != e.headerDigest) revert NotPosted("header digest");
        if (roots.length % 176 != 0) revert NotPosted("roots");
        uint256 m = roots.length / 176;
        bytes memory compressed = new bytes(m * 48);
        for (uint256 i = 0; i < m; i++) {
            bytes calldata c = roots[i * 176:i * 176 + 48];
            assembly ("memory-safe") {
                calldatacopy(add(add(compressed, 32), mul(i, 48)), c.offset, 48)
            }
        }
        if (sha256(compressed) != e.rootsDigest) revert NotPosted("root commitments");
        verifier.verify(header, e.rootHash, roots, solvency, points, gens);
        e.solvent = true;
        emit Solvent(operator, epoch, e.bundleHash);
    }

    /// Whether `operator`'s bundle for `epoch` is posted and its solvency
    /// proofs were checked on chain.
    function isSolvent(address operator, uint64 epoch) external view returns (bool) {
        return entries[operator][epoch].solvent;
    }

    /// The sender's binding: key, signature, block (block 0: none).
    function bindingOf(address operator)
        external view returns (bytes32 key, bytes32 sigR, bytes32 sigS, uint64 blockNumber)
    {
        Binding storage b = bindings[operator];
        return (b.key, b.sigR, b.sigS, b.block_);
    }

    /// How many addresses registered `key` (each binding's signature is
    /// checked off chain; most may be forgeries).
    function registrantCount(bytes32 key) external view returns (uint256) {
        return registrants[key].length;
    }

    /// Addresses that registered `key`, from index `start`, at most `count`.
    function registrantsOf(bytes32 key, uint256 start, uint256 count)
        external view returns (address[] memory page)
    {
        address[] storage all = registrants[key];
        if (start >= all.length) return new address[](0);
        uint256 end = start + count > all.length ? all.length : start + count;
        page = new address[](end - start);
        for (uint256 i = start; i < end; i++) page[i - start] = all[i];
    }

    /// The operator's latest posted epoch; `hasPosts` false when it never posted.
    function latestEpoch(address operator) external view returns (bool hasPosts, uint64 epoch) {
        return (posted[operator], latest[operator]);
    }

    /// The operator's entry for `epoch` (bundleHash 0: none).
    function entry(address operator, uint64 epoch) external view returns (Entry memory) {
        return entries[operator][epoch];
    }
}
