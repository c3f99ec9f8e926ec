// sodium-native ships no types; this is the one function the server calls.
declare module 'sodium-native' {
  const sodium: {
    crypto_sign_BYTES: number
    /** Ed25519: whether `sig` (crypto_sign_BYTES) signs `message` under the 32-byte `publicKey`. */
    crypto_sign_verify_detached(
      sig: Uint8Array,
      message: Uint8Array,
      publicKey: Uint8Array,
    ): boolean
  }
  export default sodium
}
