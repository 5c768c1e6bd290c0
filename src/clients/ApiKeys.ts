/**
 * API keys: `smsgw_<keyId>.<secret>`. The key id (16 hex digits) is public and names the stored
 * record; the secret (32 random bytes, base64url) is never stored: the record holds
 * `sha256(salt || secret)` with a random per-key salt. The secret has 256 bits of entropy, so a slow
 * password hash (scrypt) would add nothing but CPU on every request.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto"

const KEY_PATTERN = /^smsgw_([0-9a-f]{16})\.([A-Za-z0-9_-]{43})$/

export interface ParsedKey {
  readonly keyId: string
  readonly secret: string
}

export interface HashedSecret {
  readonly salt: string
  readonly hash: string
}

export const parseApiKey = (apiKey: string): ParsedKey | undefined => {
  const match = KEY_PATTERN.exec(apiKey.trim())
  const [, keyId, secret] = match ?? []
  return keyId === undefined || secret === undefined ? undefined : { keyId, secret }
}

const digest = (salt: string, secret: string) =>
  createHash("sha256").update(Buffer.from(salt, "hex")).update(secret, "utf8").digest()

export const hashSecret = (secret: string, salt = randomBytes(16).toString("hex")): HashedSecret => ({
  salt,
  hash: digest(salt, secret).toString("hex")
})

/** Constant-time comparison of a presented secret with a stored hash. */
export const verifySecret = (secret: string, stored: HashedSecret): boolean => {
  const expected = Buffer.from(stored.hash, "hex")
  const actual = digest(stored.salt, secret)
  return expected.length === actual.length && timingSafeEqual(expected, actual)
}

/** A fresh key: the full key (shown once) and what is stored of it. */
export const generateApiKey = (): { readonly apiKey: string; readonly keyId: string } & HashedSecret => {
  const keyId = randomBytes(8).toString("hex")
  const secret = randomBytes(32).toString("base64url")
  return { apiKey: `smsgw_${keyId}.${secret}`, keyId, ...hashSecret(secret) }
}
