// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title zksolv solvency verifier: the two solvency statements of a bundle,
/// checked on chain with the EIP-2537 BLS12-381 precompiles.
/// @notice Spec: docs/onchain-verifier.md, docs/epoch.md (The statements),
/// docs/protocol.md §§2-6. The verifier forms the statements itself from the
/// epoch header bytes (their SHA-256 is the header digest D every proof is
/// bound to) and the root commitments:
///   per asset   V_j = reserves_j*g - C_root_credit_j (+ C_root_debt_j)
///   valued      V   = (sum_j c_j*reserves_j)*g - sum_j b_j*C_root_credit_j (+ b_j*C_root_debt_j)
/// and checks each aggregated 128-bit Bulletproofs range proof with the
/// transcript of protocol.md §5 (SHAKE-256, computed here with Keccak-f[1600]).
/// Every point arrives twice: its 48-byte compressed encoding (what the
/// transcript absorbs) and its uncompressed EIP-2537 form (what the
/// precompiles take); the two must agree, and every point goes through the
/// G1MSM precompile, which checks it is on the curve and in the subgroup.
/// The generators come in calldata and must hash (keccak256) to the value
/// pinned here for their count.
contract ZksolvSolvencyVerifier {
    uint256 internal constant R = 0x73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001;
    // 2^256 mod r
    uint256 internal constant R256 = 0x1824b159acc5056f998c4fefecbc4ff55884b7fa0003480200000001fffffffe;
    // (p - 1) / 2 as two 256-bit words, high first (the high word has 125 bits)
    uint256 internal constant HALF_P_HI = 0xd0088f51cbff34d258dd3db21a5d66b;
    uint256 internal constant HALF_P_LO = 0xb23ba5c279c2895fb39869507b587b120f55ffff58a9ffffdcff7fffffffd555;
    uint256 internal constant BITS = 128;       // n of both solvency statements
    uint256 internal constant MAX_M = 16;       // at most 16 commitments (assets) per proof
    uint256 internal constant POINT = 128;      // uncompressed point bytes (EIP-2537)
    uint256 internal constant COMPRESSED = 48;
    uint256 internal constant G1MSM = 0x0c;
    uint256 internal constant MAX_LEAF = (1 << 64) - 1;

    // keccak256 of the generator blob g, h, u, then (G_i, H_i) for i < N,
    // uncompressed, for N = 128 * M (M = 1, 2, 4, 8, 16)
    bytes32 internal constant GENS_128 = 0x19462e5380ae297479ae1c3cac7e2edd030dc988a63c6d970374456d82d3b572;
    bytes32 internal constant GENS_256 = 0x360242519067152a62430166e3117d6bbc5ac0d8bd45954fca2929b26b12ed53;
    bytes32 internal constant GENS_512 = 0x848992c3b7131f8734b5b874cdc887a9eb0edd1f5af8e497c94caee36c7bc881;
    bytes32 internal constant GENS_1024 = 0x46f25fc44e320a990188d32b6ba505ccfca03526a3e806ddaaaeed2ed4a5fd01;
    bytes32 internal constant GENS_2048 = 0xec8ecafcbdcc4d077f65f415f379d31e1fbd7d280f9aa437d569dab7ded8e225;

    error BadHeader(string what);
    error SolvencyBounds(string what);
    error BadEncoding(string what, uint256 index);
    error BadGenerators(uint256 n);
    error SolvencyAsset();
    error SolvencyValued();
    error Unsupported(string what);
    error BadPoint();

    struct Terms {
        uint256 k;              // assets
        uint256 m;              // columns (k + borrowable assets)
        uint256 depth;
        uint256[] reserves;     // proof units, rounded down
        uint256[] c;            // valued reserve weights
        uint256[] b;            // valued liability weights
        bool[] borrowable;
    }

    struct Proof {
        uint256 rounds;
        uint256 tHat;
        uint256 tauX;
        uint256 mu;
        uint256 a;
        uint256 b;
    }

    // -- entry point -------------------------------------------------------------------

    /// Verify both solvency proofs of a bundle; returns the header digest D.
    /// `roots`: per column, 48 compressed bytes then 128 uncompressed bytes.
    /// `solvency`: the bundle's solvency.bin (per-asset proof, then valued).
    /// `points`: the uncompressed A, S, T1, T2, L_1, R_1, ..., L_k, R_k of the
    /// per-asset proof, then those of the valued proof. `gens`: see GENS_*.
    function verify(
        bytes calldata header,
        bytes32 rootHash,
        bytes calldata roots,
        bytes calldata solvency,
        bytes calldata points,
        bytes calldata gens
    ) external view returns (bytes32 digest) {
        Terms memory t = _parseHeader(header);
        digest = sha256(header);
        if (roots.length != t.m * (COMPRESSED + POINT)) revert BadEncoding("roots", roots.length);
        for (uint256 i = 0; i < t.m; i++) {
            _checkEncoding(roots[i * 176:i * 176 + 48], roots[i * 176 + 48:i * 176 + 176], true, "root", i);
        }
        bytes memory context = abi.encodePacked("zksolv/context/solvency/v1", digest, rootHash);
        uint256 mAsset = _pow2(t.k);
        uint256 assetRounds = _log2(BITS * mAsset);
        uint256 assetLen = 352 + 96 * assetRounds;
        if (solvency.length != assetLen + 352 + 96 * 7) revert BadEncoding("solvency.bin", solvency.length);
        uint256 assetPts = (4 + 2 * assetRounds) * POINT;
        if (points.length != assetPts + 18 * POINT) revert BadEncoding("points", points.length);
        _checkGenerators(gens, BITS * mAsset);

        (bytes memory vc, bytes memory vu) = _assetMargins(t, roots, gens);
        if (!_verifyRange("zksolv/circuit/solvency-asset/v1", vc, vu, context,
                          solvency[:assetLen], points[:assetPts], gens)) revert SolvencyAsset();
        (vc, vu) = _valuedMargin(t, roots, gens);
        if (!_verifyRange("zksolv/circuit/solvency-valued/v1", vc, vu, context,
                          solvency[assetLen:], points[assetPts:], gens)) revert SolvencyValued();
    }

    // -- the header ------------------------------------------------------------------------

    function _parseHeader(bytes calldata h) internal pure returns (Terms memory t) {
        if (h.length < 22 + 32 + 8 + 8 + 1 + 1 + 32 + 8 + 1 + 4 + 1 + 1) revert BadHeader("short");
        bytes32 tag = keccak256(h[:22]);
        bool margin;
        // version 6 (chain reserves) is version 4 or 5 with its own tag and the
        // evidence digest at the end; which of the two its rounding rule says
        bool chainReserves = tag == keccak256("zksolv/epoch-header/v6");
        if (tag == keccak256("zksolv/epoch-header/v4")) margin = false;
        else if (tag == keccak256("zksolv/epoch-header/v5")) margin = true;
        else if (!chainReserves) revert Unsupported("header tag");
        uint256 o = 22 + 32 + 8 + 8 + 1 + 1 + 32 + 8;   // operator .. prev epoch
        t.depth = uint8(h[o]);
        o += 1 + 4 + 1;                                  // depth, shard leaves, reveal
        uint256 rl = uint8(h[o]);
        o += 1;
        _need(h, o, rl + 2);
        bytes32 rounding = keccak256(h[o:o + rl]);
        if (chainReserves) margin = rounding == keccak256("liabilities-up/reserves-down/debts-down");
        if (rounding != (margin ? keccak256("liabilities-up/reserves-down/debts-down")
                                : keccak256("liabilities-up/reserves-down"))) revert BadHeader("rounding");
        o += rl;
        t.k = (uint256(uint8(h[o])) << 8) | uint8(h[o + 1]);
        o += 2;
        if (t.k == 0 || t.k > MAX_M) revert Unsupported("asset count");
        if (t.depth < 1 || t.depth > 32) revert BadHeader("depth");
        t.reserves = new uint256[](t.k);
        t.c = new uint256[](t.k);
        t.b = new uint256[](t.k);
        t.borrowable = new bool[](t.k);
        uint256[] memory price = new uint256[](t.k);
        uint256[] memory haircut = new uint256[](t.k);
        uint256[] memory pdec = new uint256[](t.k);
        uint256 top = 0;
        for (uint256 j = 0; j < t.k; j++) {
            _need(h, o, 1);
            o += 1 + uint8(h[o]);                        // symbol
            _need(h, o, 44);
            uint256 dec = uint8(h[o]);
            pdec[j] = uint8(h[o + 1]);
            if (pdec[j] > dec || dec > 30) revert BadHeader("decimals");
            price[j] = uint64(bytes8(h[o + 2:o + 10]));
            haircut[j] = uint16(bytes2(h[o + 10:o + 12]));
            if (haircut[j] > 10000) revert BadHeader("haircut");
            uint256 reserves = uint256(bytes32(h[o + 12:o + 44]));
            t.reserves[j] = reserves / 10 ** (dec - pdec[j]);
            if (t.reserves[j] > MAX_LEAF) revert BadHeader("reserves");
            if (pdec[j] > top) top = pdec[j];
            o += 44;
        }
        t.m = t.k;
        if (margin) {
            _need(h, o, t.k);
            for (uint256 j = 0; j < t.k; j++) {
                uint8 f = uint8(h[o + j]);
                if (f > 1) revert BadHeader("borrowable flag");
                t.borrowable[j] = f == 1;
                if (f == 1) t.m += 1;
            }
            o += t.k;
        }
        if (chainReserves) o += 32;                      // the evidence digest
        if (o != h.length) revert BadHeader("length");
        // valued weights: a_j = price_j * 10^(top - pdec_j); c_j = a_j*haircut_j/g0, b_j = a_j*10000/g0
        uint256 g0 = 0;
        for (uint256 j = 0; j < t.k; j++) {
            uint256 aj = price[j] * 10 ** (top - pdec[j]);
            t.c[j] = aj * haircut[j];
            t.b[j] = aj * 10000;
            g0 = _gcd(_gcd(g0, t.c[j]), t.b[j]);
        }
        if (g0 == 0) revert SolvencyBounds("every asset has price 0");
        uint256 positive = 0;
        uint256 weights = 0;
        for (uint256 j = 0; j < t.k; j++) {
            t.c[j] /= g0;
            t.b[j] /= g0;
            positive += t.c[j] * t.reserves[j];
            weights += t.b[j];
        }
        if (positive >= 1 << BITS) revert SolvencyBounds("valued reserves exceed 2^128");
        // sum_j b_j * 2^depth * (2^64 - 1) < r - 2^128
        if (weights >= (R - (1 << BITS)) / ((uint256(1) << t.depth) * MAX_LEAF) + 1
            || weights * (uint256(1) << t.depth) * MAX_LEAF >= R - (1 << BITS)) {
            revert SolvencyBounds("liability weights could wrap modulo r");
        }
    }

    /// At least `n` more header bytes from `o`, else BadHeader("length").
    function _need(bytes calldata h, uint256 o, uint256 n) internal pure {
        if (o + n > h.length) revert BadHeader("length");
    }

    function _gcd(uint256 a, uint256 b) internal pure returns (uint256) {
        while (b != 0) (a, b) = (b, a % b);
        return a;
    }

    // -- statements ------------------------------------------------------------------------

    /// Column index of asset j's credit, and of its debt (when borrowable).
    function _assetMargins(Terms memory t, bytes calldata roots, bytes calldata gens)
        internal view returns (bytes memory vc, bytes memory vu)
    {
        vc = new bytes(t.k * COMPRESSED);
        vu = new bytes(t.k * POINT);
        uint256 col = 0;
        for (uint256 j = 0; j < t.k; j++) {
            bool debt = t.borrowable[j];
            uint256 count = debt ? 3 : 2;
            bytes memory input = new bytes(count * 160);
            _putCalldataPoint(input, 0, gens[0:POINT]);
            _putScalar(input, 0, t.reserves[j]);
            _putCalldataPoint(input, 1, roots[col * 176 + 48:col * 176 + 176]);
            _putScalar(input, 1, R - 1);
            if (debt) {
                _putCalldataPoint(input, 2, roots[(col + 1) * 176 + 48:(col + 1) * 176 + 176]);
                _putScalar(input, 2, 1);
            }
            col += debt ? 2 : 1;
            bytes memory p = _msm(input, count);
            if (_isZero(p)) revert SolvencyAsset();
            _storePoint(vu, j, p);
            _storeCompressed(vc, j, p);
        }
    }

    function _valuedMargin(Terms memory t, bytes calldata roots, bytes calldata gens)
        internal view returns (bytes memory vc, bytes memory vu)
    {
        uint256 count = 1 + t.m;
        bytes memory input = new bytes(count * 160);
        uint256 positive = 0;
        for (uint256 j = 0; j < t.k; j++) positive += t.c[j] * t.reserves[j];
        _putCalldataPoint(input, 0, gens[0:POINT]);
        _putScalar(input, 0, positive);
        uint256 col = 0;
        for (uint256 j = 0; j < t.k; j++) {
            _putCalldataPoint(input, 1 + col, roots[col * 176 + 48:col * 176 + 176]);
            _putScalar(input, 1 + col, R - t.b[j]);
            col++;
            if (t.borrowable[j]) {
                _putCalldataPoint(input, 1 + col, roots[col * 176 + 48:col * 176 + 176]);
                _putScalar(input, 1 + col, t.b[j]);
                col++;
            }
        }
        bytes memory p = _msm(input, count);
        if (_isZero(p)) revert SolvencyValued();
        vc = new bytes(COMPRESSED);
        vu = new bytes(POINT);
        _storePoint(vu, 0, p);
        _storeCompressed(vc, 0, p);
    }

    // -- the range proof (protocol.md §5) ------------------------------------------------

    struct Challenges {
        uint256[] y;
        uint256 z;
        uint256 x;
        uint256 w;
        uint256[] u;
    }

    function _verifyRange(
        bytes memory statementId,
        bytes memory vc,
        bytes memory vu,
        bytes memory context,
        bytes calldata proof,
        bytes calldata pts,
        bytes calldata gens
    ) internal view returns (bool) {
        uint256 m = vc.length / COMPRESSED;
        uint256 bigM = _pow2(m);
        uint256 n = BITS * bigM;
        Proof memory pf;
        pf.rounds = _log2(n);
        if (proof.length != 352 + 96 * pf.rounds) return false;
        if (pts.length != (4 + 2 * pf.rounds) * POINT) return false;
        // points: A S T1 T2 at 0..3, then L_k R_k; compressed in the proof at
        // A S T1 T2 (0..191), then L_k R_k after the three scalars (288..)
        for (uint256 i = 0; i < 4 + 2 * pf.rounds; i++) {
            uint256 co = i < 4 ? i * 48 : 288 + (i - 4) * 48;
            _checkEncoding(proof[co:co + 48], pts[i * POINT:(i + 1) * POINT], i >= 2, "proof point", i);
        }
        pf.tHat = _scalar(proof[192:224]);
        pf.tauX = _scalar(proof[224:256]);
        pf.mu = _scalar(proof[256:288]);
        uint256 ab = 288 + 96 * pf.rounds;
        pf.a = _scalar(proof[ab:ab + 32]);
        pf.b = _scalar(proof[ab + 32:ab + 64]);

        Challenges memory ch = _transcript(statementId, vc, context, proof, pf.rounds, m);
        if (!_checkT(pf, ch, vu, pts, gens, m, bigM)) return false;
        return _checkIpa(pf, ch, pts, gens, n);
    }

    function _transcript(
        bytes memory statementId,
        bytes memory vc,
        bytes memory context,
        bytes calldata proof,
        uint256 rounds,
        uint256 m
    ) internal pure returns (Challenges memory ch) {
        uint256 tr = _newTranscript("zksolv/range-proof");
        _message(tr, "scheme", "zksolv/range/bulletproofs-aggregated/v1");
        _message(tr, "statement-id", statementId);
        _message(tr, "generator-set", "zksolv/generators/bls12381g1-sswu-ro/v1");
        _message(tr, "n", abi.encodePacked(_le64(BITS)));
        _message(tr, "m", abi.encodePacked(_le64(m)));
        _message(tr, "context", context);
        for (uint256 j = 0; j < m; j++) {
            bytes memory v = new bytes(COMPRESSED);
            assembly ("memory-safe") { mcopy(add(v, 32), add(add(vc, 32), mul(j, 48)), 48) }
            _message(tr, "V", v);
        }
        _message(tr, "A", proof[0:48]);
        _message(tr, "S", proof[48:96]);
        ch.y = new uint256[](rounds);
        for (uint256 k = 0; k < rounds; k++) ch.y[k] = _challengeShort(tr, "y");
        ch.z = _challengeScalar(tr, "z");
        _message(tr, "T1", proof[96:144]);
        _message(tr, "T2", proof[144:192]);
        ch.x = _challengeScalar(tr, "x");
        _message(tr, "t_hat", proof[192:224]);
        _message(tr, "tau_x", proof[224:256]);
        _message(tr, "mu", proof[256:288]);
        ch.w = _challengeScalar(tr, "w");
        ch.u = new uint256[](rounds);
        for (uint256 k = 0; k < rounds; k++) {
            _message(tr, "L", proof[288 + 96 * k:336 + 96 * k]);
            _message(tr, "R", proof[336 + 96 * k:384 + 96 * k]);
            ch.u[k] = _challengeShort(tr, "u");
        }
    }

    /// [range-t] (t_hat - delta)*g + tau_x*h - sum_j z^(2+j) V_j - x*T1 - x^2*T2 = O
    function _checkT(Proof memory pf, Challenges memory ch, bytes memory vu, bytes calldata pts,
                     bytes calldata gens, uint256 m, uint256 bigM) internal view returns (bool) {
        uint256 z = ch.z;
        uint256 sumW = 1;
        for (uint256 k = 0; k < ch.y.length; k++) sumW = mulmod(sumW, 1 + ch.y[k], R);
        uint256 zp = mulmod(z, z, R);        // z^2
        uint256 z2 = zp;
        uint256 sumZ = 0;                    // sum_{j<M} z^(3+j)
        for (uint256 j = 0; j < bigM; j++) {
            zp = mulmod(zp, z, R);
            sumZ = addmod(sumZ, zp, R);
        }
        uint256 delta = addmod(
            mulmod(addmod(z, R - z2, R), sumW, R),
            R - mulmod((1 << BITS) - 1, sumZ, R), R);
        bytes memory input = new bytes((4 + m) * 160);
        _putCalldataPoint(input, 0, gens[0:POINT]);
        _putScalar(input, 0, addmod(pf.tHat, R - delta, R));
        _putCalldataPoint(input, 1, gens[POINT:2 * POINT]);
        _putScalar(input, 1, pf.tauX);
        _putCalldataPoint(input, 2, pts[2 * POINT:3 * POINT]);
        _putScalar(input, 2, R - ch.x);
        _putCalldataPoint(input, 3, pts[3 * POINT:4 * POINT]);
        _putScalar(input, 3, R - mulmod(ch.x, ch.x, R));
        zp = z2;
        for (uint256 j = 0; j < m; j++) {
            assembly ("memory-safe") {
                mcopy(add(add(input, 32), mul(add(4, j), 160)), add(add(vu, 32), mul(j, 128)), 128)
            }
            _putScalar(input, 4 + j, R - zp);
            zp = mulmod(zp, z, R);
        }
        return _isZero(_msm(input, 4 + m));
    }

    /// [range-ipa] sum_i (a*s_i + z) G_i + (b*(s^-1 w^-1)_i - z^(2+j) 2^(i mod n) w^-1_i - z) H_i
    ///   + mu*h + w*(a*b - t_hat)*u - A - x*S - sum_k (u_k^-1 L_k + u_k R_k) = O
    function _checkIpa(Proof memory pf, Challenges memory ch, bytes calldata pts,
                       bytes calldata gens, uint256 n) internal view returns (bool) {
        uint256 rounds = pf.rounds;
        uint256[] memory uInv = new uint256[](rounds);
        uint256[] memory yInv = new uint256[](rounds);
        uint256[] memory uy = new uint256[](rounds);
        for (uint256 k = 0; k < rounds; k++) {
            uInv[k] = _inverse(ch.u[k]);
            yInv[k] = _inverse(ch.y[k]);
            uy[k] = mulmod(ch.u[k], yInv[k], R);
        }
        uint256[] memory s = _tensor(uInv, pf.a, n);
        uint256[] memory f = _tensor(uy, pf.b, n);
        uint256[] memory wInv = _tensor(yInv, 1, n);
        uint256 count = 2 * n + 4 + 2 * rounds;
        bytes memory input = new bytes(count * 160);
        uint256 z = ch.z;
        {
            uint256 zj = mulmod(z, z, R);   // z^(2+j) for the current j
            for (uint256 i = 0; i < n; i++) {
                if (i > 0 && i % BITS == 0) zj = mulmod(zj, z, R);
                uint256 gi = addmod(s[i], z, R);
                uint256 sub = addmod(mulmod(mulmod(zj, 1 << (i % BITS), R), wInv[i], R), z, R);
                uint256 hi = addmod(f[i], R - sub, R);
                assembly ("memory-safe") {
                    let dst := add(add(input, 32), mul(mul(i, 2), 160))
                    let src := add(gens.offset, add(384, mul(i, 256)))
                    calldatacopy(dst, src, 128)
                    mstore(add(dst, 128), gi)
                    calldatacopy(add(dst, 160), add(src, 128), 128)
                    mstore(add(dst, 288), hi)
                }
            }
        }
        uint256 idx = 2 * n;
        _putCalldataPoint(input, idx, gens[128:256]);                  // h
        _putScalar(input, idx, pf.mu);
        _putCalldataPoint(input, idx + 1, gens[256:384]);              // u
        _putScalar(input, idx + 1, mulmod(ch.w, addmod(mulmod(pf.a, pf.b, R), R - pf.tHat, R), R));
        _putCalldataPoint(input, idx + 2, pts[0:POINT]);               // A
        _putScalar(input, idx + 2, R - 1);
        _putCalldataPoint(input, idx + 3, pts[POINT:2 * POINT]);       // S
        _putScalar(input, idx + 3, R - ch.x);
        for (uint256 k = 0; k < rounds; k++) {
            _putCalldataPoint(input, idx + 4 + 2 * k, pts[(4 + 2 * k) * POINT:(5 + 2 * k) * POINT]);
            _putScalar(input, idx + 4 + 2 * k, R - uInv[k]);
            _putCalldataPoint(input, idx + 5 + 2 * k, pts[(5 + 2 * k) * POINT:(6 + 2 * k) * POINT]);
            _putScalar(input, idx + 5 + 2 * k, R - ch.u[k]);
        }
        return _isZero(_msm(input, count));
    }

    /// start * prod_k factors[k]^bit_k(i) for i < n, factor 0 on the top bit.
    function _tensor(uint256[] memory factors, uint256 start, uint256 n)
        internal pure returns (uint256[] memory out)
    {
        out = new uint256[](n);
        out[0] = start % R;
        uint256 len = 1;
        for (uint256 k = 0; k < factors.length; k++) {
            uint256 fk = factors[k];
            for (uint256 i = len; i > 0; i--) {
                uint256 v = out[i - 1];
                out[2 * i - 1] = mulmod(v, fk, R);
                out[2 * i - 2] = v;
            }
            len *= 2;
        }
    }

    function _inverse(uint256 v) internal view returns (uint256 out) {
        // v^(r-2) mod r through the MODEXP precompile (0x05)
        bytes memory input = abi.encodePacked(uint256(32), uint256(32), uint256(32), v, R - 2, R);
        assembly ("memory-safe") {
            if iszero(staticcall(gas(), 0x05, add(input, 32), 192, 0x00, 32)) { revert(0, 0) }
            out := mload(0x00)
        }
    }

    // -- generators ---------------------------------------------------------------------------

    function _checkGenerators(bytes calldata gens, uint256 n) internal pure {
        bytes32 want;
        if (n == 128) want = GENS_128;
        else if (n == 256) want = GENS_256;
        else if (n == 512) want = GENS_512;
        else if (n == 1024) want = GENS_1024;
        else if (n == 2048) want = GENS_2048;
        else revert Unsupported("generator count");
        if (gens.length != 384 + 256 * n || keccak256(gens) != want) revert BadGenerators(n);
    }

    // -- encodings ------------------------------------------------------------------------------

    /// The compressed encoding `c` (ZCash) is the uncompressed point `u`
    /// (EIP-2537: x and y, each 64 bytes big-endian, top 16 bytes zero;
    /// identity all zero). On-curve and subgroup are the precompiles' checks.
    function _checkEncoding(bytes calldata c, bytes calldata u, bool identityOk,
                            string memory what, uint256 index) internal pure {
        uint256 c0 = uint256(bytes32(c[0:32]));
        uint256 c1 = uint128(bytes16(c[32:48]));
        uint256 x0 = uint256(bytes32(u[0:32]));
        uint256 x1 = uint256(bytes32(u[32:64]));
        uint256 y0 = uint256(bytes32(u[64:96]));
        uint256 y1 = uint256(bytes32(u[96:128]));
        uint256 flags = c0 >> 253;
        if (flags & 4 == 0) revert BadEncoding(what, index);            // compression flag
        if (flags & 2 != 0) {                                           // identity
            if (!identityOk || flags != 6 || (c0 << 3) != 0 || c1 != 0
                || (x0 | x1 | y0 | y1) != 0) revert BadEncoding(what, index);
            return;
        }
        // x: the compressed 381 bits against the uncompressed 64 bytes
        if (x0 >> 128 != 0 || y0 >> 128 != 0) revert BadEncoding(what, index);
        uint256 cx0 = (c0 & ~(uint256(7) << 253)) >> 128;       // top 16 bytes of x
        uint256 cx1 = (c0 << 128) | c1;                          // low 32 bytes of x
        if (cx0 != x0 || cx1 != x1) revert BadEncoding(what, index);
        bool large = y0 > HALF_P_HI || (y0 == HALF_P_HI && y1 > HALF_P_LO);
        if (large != (flags & 1 == 1)) revert BadEncoding(what, index);
    }

    function _storePoint(bytes memory dst, uint256 i, bytes memory p) internal pure {
        assembly ("memory-safe") { mcopy(add(add(dst, 32), mul(i, 128)), add(p, 32), 128) }
    }

    /// The 48-byte compressed encoding of a non-identity uncompressed point.
    function _storeCompressed(bytes memory dst, uint256 i, bytes memory p) internal pure {
        uint256 x0;
        uint256 x1;
        uint256 y0;
        uint256 y1;
        assembly ("memory-safe") {
            x0 := mload(add(p, 32))
            x1 := mload(add(p, 64))
            y0 := mload(add(p, 96))
            y1 := mload(add(p, 128))
        }
        uint256 flags = 4;
        if (y0 > HALF_P_HI || (y0 == HALF_P_HI && y1 > HALF_P_LO)) flags = 5;
        uint256 w0 = (flags << 253) | (x0 << 128) | (x1 >> 128);
        uint256 w1 = x1 << 128;
        assembly ("memory-safe") {
            let o := add(add(dst, 32), mul(i, 48))
            mstore(o, w0)
            // 16 more bytes without touching what follows
            let after := mload(add(o, 48))
            mstore(add(o, 32), w1)
            mstore(add(o, 48), after)
        }
    }

    function _scalar(bytes calldata le) internal pure returns (uint256 v) {
        v = _reverse(uint256(bytes32(le)));
        if (v >= R) revert BadEncoding("scalar", v);
    }

    function _putCalldataPoint(bytes memory input, uint256 i, bytes calldata p) internal pure {
        assembly ("memory-safe") { calldatacopy(add(add(input, 32), mul(i, 160)), p.offset, 128) }
    }

    function _putScalar(bytes memory input, uint256 i, uint256 s) internal pure {
        assembly ("memory-safe") { mstore(add(add(input, 32), add(mul(i, 160), 128)), s) }
    }

    /// sum_i s_i P_i through the G1MSM precompile, which refuses a point
    /// off the curve or outside the subgroup (BadPoint).
    function _msm(bytes memory input, uint256 count) internal view returns (bytes memory out) {
        out = new bytes(128);
        bool ok;
        assembly ("memory-safe") {
            ok := staticcall(gas(), G1MSM, add(input, 32), mul(count, 160), add(out, 32), 128)
        }
        if (!ok) revert BadPoint();
    }

    function _isZero(bytes memory p) internal pure returns (bool z) {
        assembly ("memory-safe") {
            z := iszero(or(or(mload(add(p, 32)), mload(add(p, 64))), or(mload(add(p, 96)), mload(add(p, 128)))))
        }
    }

    function _pow2(uint256 v) internal pure returns (uint256 p) {
        p = 1;
        while (p < v) p <<= 1;
    }

    function _log2(uint256 v) internal pure returns (uint256 l) {
        while (v > 1) {
            v >>= 1;
            l++;
        }
    }

    /// Byte order of a 256-bit word reversed (little-endian <-> big-endian).
    function _reverse(uint256 v) internal pure returns (uint256) {
        v = ((v & 0xff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00) >> 8)
            | ((v & 0x00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff) << 8);
        v = ((v & 0xffff0000ffff0000ffff0000ffff0000ffff0000ffff0000ffff0000ffff0000) >> 16)
            | ((v & 0x0000ffff0000ffff0000ffff0000ffff0000ffff0000ffff0000ffff0000ffff) << 16);
        v = ((v & 0xffffffff00000000ffffffff00000000ffffffff00000000ffffffff00000000) >> 32)
            | ((v & 0x00000000ffffffff00000000ffffffff00000000ffffffff00000000ffffffff) << 32);
        v = ((v & 0xffffffffffffffff0000000000000000ffffffffffffffff0000000000000000) >> 64)
            | ((v & 0x0000000000000000ffffffffffffffff0000000000000000ffffffffffffffff) << 64);
        return (v >> 128) | (v << 128);
    }

    function _le64(uint256 v) internal pure returns (bytes8) {
        return bytes8(uint64(_reverse(v) >> 192));
    }

    function _le32(uint256 v) internal pure returns (bytes4) {
        return bytes4(uint32(_reverse(v) >> 224));
    }

    // -- the transcript: SHAKE-256 over length-framed messages (protocol.md §3) ------------

    // Memory of a transcript: 25 lanes (a word each), then the number of
    // bytes waiting, then the waiting bytes (fewer than 136, the rate).
    uint256 internal constant T_LEN = 800;
    uint256 internal constant T_BUF = 832;
    uint256 internal constant T_SIZE = 1024;
    uint256 internal constant RATE = 136;

    function _newTranscript(bytes memory protocolLabel) internal pure returns (uint256 tr) {
        assembly ("memory-safe") {
            tr := mload(0x40)
            mstore(0x40, add(tr, T_SIZE))
            for { let i := 0 } lt(i, T_SIZE) { i := add(i, 32) } { mstore(add(tr, i), 0) }
        }
        _frame(tr, 0x01, "zksolv-transcript-v1", protocolLabel);
    }

    function _message(uint256 tr, bytes memory label, bytes memory data) internal pure {
        _frame(tr, 0x02, label, data);
    }

    function _frame(uint256 tr, uint8 op, bytes memory label, bytes memory data) internal pure {
        bytes memory f = abi.encodePacked(bytes1(op), _le32(label.length), label, _le64(data.length), data);
        _absorb(tr, f);
    }

    function _absorb(uint256 tr, bytes memory data) internal pure {
        uint256 len;
        assembly ("memory-safe") { len := mload(add(tr, T_LEN)) }
        uint256 src;
        assembly ("memory-safe") { src := add(data, 32) }
        uint256 left = data.length;
        while (left > 0) {
            uint256 take = RATE - len;
            if (take > left) take = left;
            assembly ("memory-safe") { mcopy(add(add(tr, T_BUF), len), src, take) }
            len += take;
            src += take;
            left -= take;
            if (len == RATE) {
                _xorBlock(tr, tr + T_BUF);
                _keccakF(tr);
                len = 0;
            }
        }
        assembly ("memory-safe") { mstore(add(tr, T_LEN), len) }
    }

    /// n (at most 64) bytes of SHAKE-256 of everything absorbed, the sponge unchanged.
    function _squeeze(uint256 tr, uint256 n) internal pure returns (bytes memory out) {
        uint256 copy;
        assembly ("memory-safe") {
            copy := mload(0x40)
            mstore(0x40, add(copy, T_SIZE))
            mcopy(copy, tr, T_SIZE)
            let len := mload(add(tr, T_LEN))
            let buf := add(copy, T_BUF)
            // zero the block after the waiting bytes, then pad: 0x1F ... 0x80
            for { let i := len } lt(i, RATE) { i := add(i, 1) } { mstore8(add(buf, i), 0) }
            mstore8(add(buf, len), xor(byte(0, mload(add(buf, len))), 0x1f))
            mstore8(add(buf, 135), xor(byte(0, mload(add(buf, 135))), 0x80))
        }
        _xorBlock(copy, copy + T_BUF);
        _keccakF(copy);
        out = new bytes(n);
        assembly ("memory-safe") {
            // lanes out little-endian, 8 bytes each, into a scratch area then copy
            let scratch := mload(0x40)
            for { let i := 0 } lt(i, 8) { i := add(i, 1) } {
                let lane := mload(add(copy, mul(i, 32)))
                // byte-reverse the 64-bit lane
                lane := or(shr(8, and(lane, 0xff00ff00ff00ff00)), shl(8, and(lane, 0x00ff00ff00ff00ff)))
                lane := or(shr(16, and(lane, 0xffff0000ffff0000)), shl(16, and(lane, 0x0000ffff0000ffff)))
                lane := or(shr(32, lane), and(shl(32, lane), 0xffffffff00000000))
                mstore(add(scratch, mul(i, 8)), shl(192, lane))
            }
            mcopy(add(out, 32), scratch, n)
        }
    }

    function _challengeBytes(uint256 tr, bytes memory label, uint256 n) internal pure returns (bytes memory out) {
        _frame(tr, 0x03, label, abi.encodePacked(_le64(n)));
        out = _squeeze(tr, n);
        _frame(tr, 0x04, label, out);
    }

    function _challengeScalar(uint256 tr, bytes memory label) internal pure returns (uint256 v) {
        while (v == 0) {
            bytes memory b = _challengeBytes(tr, label, 64);
            uint256 lo = _reverse(uint256(_word(b, 0)));
            uint256 hi = _reverse(uint256(_word(b, 32)));
            v = addmod(mulmod(hi % R, R256, R), lo % R, R);
        }
    }

    function _challengeShort(uint256 tr, bytes memory label) internal pure returns (uint256 v) {
        while (v == 0) {
            bytes memory b = _challengeBytes(tr, label, 16);
            v = _reverse(uint256(_word(b, 0))) & ((1 << 128) - 1);
        }
    }

    function _word(bytes memory b, uint256 at) internal pure returns (bytes32 w) {
        assembly ("memory-safe") { w := mload(add(add(b, 32), at)) }
    }

    /// XOR the 17 little-endian 64-bit lanes of the block at `blk` into the state.
    function _xorBlock(uint256 st, uint256 blk) internal pure {
        assembly ("memory-safe") {
            for { let i := 0 } lt(i, 17) { i := add(i, 1) } {
                let lane := shr(192, mload(add(blk, mul(i, 8))))
                lane := or(shr(8, and(lane, 0xff00ff00ff00ff00)), shl(8, and(lane, 0x00ff00ff00ff00ff)))
                lane := or(shr(16, and(lane, 0xffff0000ffff0000)), shl(16, and(lane, 0x0000ffff0000ffff)))
                lane := or(shr(32, lane), and(shl(32, lane), 0xffffffff00000000))
                let p := add(st, mul(i, 32))
                mstore(p, xor(mload(p), lane))
            }
        }
    }

    /// Keccak-f[1600] on 25 lanes at `st` (lane (x, y) at word x + 5y), `tmp`
    /// 25 more words: each round reads one and writes the other (theta folded
    /// into rho and pi, then chi per row, then iota); 24 rounds end in `st`.
    function _keccakF(uint256 st) internal pure {
        assembly ("memory-safe") {
            let tmp := mload(0x40)
            // the lane mask read back from memory: kept on the stack, not rebuilt at each use
            mstore(add(tmp, 960), 0xffffffffffffffff)
            let m64 := mload(add(tmp, 960))
            for { let round := 0 } lt(round, 24) { round := add(round, 1) } {
                {
                    let c0 := xor(xor(xor(mload(st), mload(add(st, 160))), xor(mload(add(st, 320)), mload(add(st, 480)))), mload(add(st, 640)))
                    let c1 := xor(xor(xor(mload(add(st, 32)), mload(add(st, 192))), xor(mload(add(st, 352)), mload(add(st, 512)))), mload(add(st, 672)))
                    let c2 := xor(xor(xor(mload(add(st, 64)), mload(add(st, 224))), xor(mload(add(st, 384)), mload(add(st, 544)))), mload(add(st, 704)))
                    let c3 := xor(xor(xor(mload(add(st, 96)), mload(add(st, 256))), xor(mload(add(st, 416)), mload(add(st, 576)))), mload(add(st, 736)))
                    let c4 := xor(xor(xor(mload(add(st, 128)), mload(add(st, 288))), xor(mload(add(st, 448)), mload(add(st, 608)))), mload(add(st, 768)))
                    mstore(add(tmp, 800), xor(c4, and(or(shl(1, c1), shr(63, c1)), m64)))
                    mstore(add(tmp, 832), xor(c0, and(or(shl(1, c2), shr(63, c2)), m64)))
                    mstore(add(tmp, 864), xor(c1, and(or(shl(1, c3), shr(63, c3)), m64)))
                    mstore(add(tmp, 896), xor(c2, and(or(shl(1, c4), shr(63, c4)), m64)))
                    mstore(add(tmp, 928), xor(c3, and(or(shl(1, c0), shr(63, c0)), m64)))
                }
                {
                    let b0 := xor(mload(st), mload(add(tmp, 800)))
                    let b1 := xor(mload(add(st, 192)), mload(add(tmp, 832)))
                    b1 := and(or(shl(44, b1), shr(20, b1)), m64)
                    let b2 := xor(mload(add(st, 384)), mload(add(tmp, 864)))
                    b2 := and(or(shl(43, b2), shr(21, b2)), m64)
                    let b3 := xor(mload(add(st, 576)), mload(add(tmp, 896)))
                    b3 := and(or(shl(21, b3), shr(43, b3)), m64)
                    let b4 := xor(mload(add(st, 768)), mload(add(tmp, 928)))
                    b4 := and(or(shl(14, b4), shr(50, b4)), m64)
                    mstore(tmp, xor(b0, and(not(b1), b2)))
                    mstore(add(tmp, 32), xor(b1, and(not(b2), b3)))
                    mstore(add(tmp, 64), xor(b2, and(not(b3), b4)))
                    mstore(add(tmp, 96), xor(b3, and(not(b4), b0)))
                    mstore(add(tmp, 128), xor(b4, and(not(b0), b1)))
                }
                {
                    let b0 := xor(mload(add(st, 96)), mload(add(tmp, 896)))
                    b0 := and(or(shl(28, b0), shr(36, b0)), m64)
                    let b1 := xor(mload(add(st, 288)), mload(add(tmp, 928)))
                    b1 := and(or(shl(20, b1), shr(44, b1)), m64)
                    let b2 := xor(mload(add(st, 320)), mload(add(tmp, 800)))
                    b2 := and(or(shl(3, b2), shr(61, b2)), m64)
                    let b3 := xor(mload(add(st, 512)), mload(add(tmp, 832)))
                    b3 := and(or(shl(45, b3), shr(19, b3)), m64)
                    let b4 := xor(mload(add(st, 704)), mload(add(tmp, 864)))
                    b4 := and(or(shl(61, b4), shr(3, b4)), m64)
                    mstore(add(tmp, 160), xor(b0, and(not(b1), b2)))
                    mstore(add(tmp, 192), xor(b1, and(not(b2), b3)))
                    mstore(add(tmp, 224), xor(b2, and(not(b3), b4)))
                    mstore(add(tmp, 256), xor(b3, and(not(b4), b0)))
                    mstore(add(tmp, 288), xor(b4, and(not(b0), b1)))
                }
                {
                    let b0 := xor(mload(add(st, 32)), mload(add(tmp, 832)))
                    b0 := and(or(shl(1, b0), shr(63, b0)), m64)
                    let b1 := xor(mload(add(st, 224)), mload(add(tmp, 864)))
                    b1 := and(or(shl(6, b1), shr(58, b1)), m64)
                    let b2 := xor(mload(add(st, 416)), mload(add(tmp, 896)))
                    b2 := and(or(shl(25, b2), shr(39, b2)), m64)
                    let b3 := xor(mload(add(st, 608)), mload(add(tmp, 928)))
                    b3 := and(or(shl(8, b3), shr(56, b3)), m64)
                    let b4 := xor(mload(add(st, 640)), mload(add(tmp, 800)))
                    b4 := and(or(shl(18, b4), shr(46, b4)), m64)
                    mstore(add(tmp, 320), xor(b0, and(not(b1), b2)))
                    mstore(add(tmp, 352), xor(b1, and(not(b2), b3)))
                    mstore(add(tmp, 384), xor(b2, and(not(b3), b4)))
                    mstore(add(tmp, 416), xor(b3, and(not(b4), b0)))
                    mstore(add(tmp, 448), xor(b4, and(not(b0), b1)))
                }
                {
                    let b0 := xor(mload(add(st, 128)), mload(add(tmp, 928)))
                    b0 := and(or(shl(27, b0), shr(37, b0)), m64)
                    let b1 := xor(mload(add(st, 160)), mload(add(tmp, 800)))
                    b1 := and(or(shl(36, b1), shr(28, b1)), m64)
                    let b2 := xor(mload(add(st, 352)), mload(add(tmp, 832)))
                    b2 := and(or(shl(10, b2), shr(54, b2)), m64)
                    let b3 := xor(mload(add(st, 544)), mload(add(tmp, 864)))
                    b3 := and(or(shl(15, b3), shr(49, b3)), m64)
                    let b4 := xor(mload(add(st, 736)), mload(add(tmp, 896)))
                    b4 := and(or(shl(56, b4), shr(8, b4)), m64)
                    mstore(add(tmp, 480), xor(b0, and(not(b1), b2)))
                    mstore(add(tmp, 512), xor(b1, and(not(b2), b3)))
                    mstore(add(tmp, 544), xor(b2, and(not(b3), b4)))
                    mstore(add(tmp, 576), xor(b3, and(not(b4), b0)))
                    mstore(add(tmp, 608), xor(b4, and(not(b0), b1)))
                }
                {
                    let b0 := xor(mload(add(st, 64)), mload(add(tmp, 864)))
                    b0 := and(or(shl(62, b0), shr(2, b0)), m64)
                    let b1 := xor(mload(add(st, 256)), mload(add(tmp, 896)))
                    b1 := and(or(shl(55, b1), shr(9, b1)), m64)
                    let b2 := xor(mload(add(st, 448)), mload(add(tmp, 928)))
                    b2 := and(or(shl(39, b2), shr(25, b2)), m64)
                    let b3 := xor(mload(add(st, 480)), mload(add(tmp, 800)))
                    b3 := and(or(shl(41, b3), shr(23, b3)), m64)
                    let b4 := xor(mload(add(st, 672)), mload(add(tmp, 832)))
                    b4 := and(or(shl(2, b4), shr(62, b4)), m64)
                    mstore(add(tmp, 640), xor(b0, and(not(b1), b2)))
                    mstore(add(tmp, 672), xor(b1, and(not(b2), b3)))
                    mstore(add(tmp, 704), xor(b2, and(not(b3), b4)))
                    mstore(add(tmp, 736), xor(b3, and(not(b4), b0)))
                    mstore(add(tmp, 768), xor(b4, and(not(b0), b1)))
                }
                let rcw := 0
                switch shr(2, round)
                case 0 { rcw := 0x8000000080008000800000000000808a00000000000080820000000000000001 }
                case 1 { rcw := 0x800000000000800980000000800080810000000080000001000000000000808b }
                case 2 { rcw := 0x8000000a00000000800080090000000000000088000000000000008a }
                case 3 { rcw := 0x80000000000080038000000000008089800000000000008b000000008000808b }
                case 4 { rcw := 0x800000008000000a000000000000800a80000000000000808000000000008002 }
                default { rcw := 0x8000000080008008000000008000000180000000000080808000000080008081 }
                mstore(tmp, xor(mload(tmp), and(shr(shl(6, and(round, 3)), rcw), m64)))
                let swap := st
                st := tmp
                tmp := swap
            }
        }
    }

    // -- for tests: the transcript alone -------------------------------------------------------

    /// SHAKE-256(data)[:n] (n <= 64) through this contract's sponge: a
    /// differential test compares it with hashlib.
    function shake256(bytes calldata data, uint256 n) external pure returns (bytes memory) {
        uint256 tr;
        assembly ("memory-safe") {
            tr := mload(0x40)
            mstore(0x40, add(tr, T_SIZE))
            for { let i := 0 } lt(i, T_SIZE) { i := add(i, 32) } { mstore(add(tr, i), 0) }
        }
        _absorb(tr, data);
        return _squeeze(tr, n);
    }
}
