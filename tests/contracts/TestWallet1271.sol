// SPDX-License-Identifier: Apache-2.0
// A contract wallet for the chain tests: one owner key (an EOA). It answers
// EIP-1271's isValidSignature with the magic value 0x1626ba7e exactly when the
// 65-byte signature r || s || v over the hash recovers to the owner, and
// 0xffffffff otherwise. The owner may move its funds with execute().
pragma solidity 0.8.37;

contract TestWallet1271 {
    bytes4 internal constant MAGIC_VALUE = 0x1626ba7e;
    bytes4 internal constant INVALID = 0xffffffff;

    address public immutable owner;

    constructor(address owner_) {
        require(owner_ != address(0), "TestWallet1271: no owner");
        owner = owner_;
    }

    receive() external payable {}

    function isValidSignature(bytes32 hash, bytes calldata signature)
        external
        view
        returns (bytes4)
    {
        if (signature.length != 65) {
            return INVALID;
        }
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        address signer = ecrecover(hash, v, r, s);
        if (signer != address(0) && signer == owner) {
            return MAGIC_VALUE;
        }
        return INVALID;
    }

    function execute(address to, uint256 value, bytes calldata data)
        external
        returns (bytes memory)
    {
        require(msg.sender == owner, "TestWallet1271: only the owner");
        (bool ok, bytes memory result) = to.call{value: value}(data);
        require(ok, "TestWallet1271: call failed");
        return result;
    }
}
