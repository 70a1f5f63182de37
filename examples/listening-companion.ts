// Listening companion: the whole app state as one client-side encrypted backup.
// The key is derived on the device from the user's passphrase (WebCrypto PBKDF2) and
// the state sealed with AES-GCM; the server stores ciphertext, nonce and the
// key-derivation parameters, never the passphrase or the key.
// Guide: docs/library.md ("Encrypted backups"). Every RPC, argument and column below
// is checked by `tsc --noEmit -p examples` against the generated supabase/types/database.ts.

import { createClient } from '@supabase/supabase-js'
import type { Database, Tables } from '../supabase/types/database'
import { integer, optionalText, record, text } from './json'

const SUPABASE_URL = 'http://127.0.0.1:54321' // `supabase start`; your project's URL in production
const SUPABASE_ANON_KEY = '<anon or publishable key>'

export const supabase = createClient<Database>(SUPABASE_URL, SUPABASE_ANON_KEY)

/** Stored beside the ciphertext (public.backups.kdf): how to derive the key again. */
export type Kdf = { name: 'PBKDF2'; hash: 'SHA-256'; iterations: number; salt: string; cipher: 'AES-GCM-256' }

export type StoredBackup = { version: number; sizeBytes: number; createdAt: string }

// == bytes and base64 (the RPCs take and return base64 text) ==

function toBase64(bytes: Uint8Array): string {
  let binary = ''
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000))
  return btoa(binary)
}

function fromBase64(b64: string): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))
}

// == encryption on the device ==

async function deriveKey(passphrase: string, kdf: Kdf): Promise<CryptoKey> {
  const material = await crypto.subtle.importKey('raw', new TextEncoder().encode(passphrase), 'PBKDF2', false, [
    'deriveKey',
  ])
  return crypto.subtle.deriveKey(
    { name: 'PBKDF2', hash: kdf.hash, iterations: kdf.iterations, salt: fromBase64(kdf.salt) },
    material,
    { name: 'AES-GCM', length: 256 },
    false,
    ['encrypt', 'decrypt'],
  )
}

async function seal(state: unknown, passphrase: string) {
  const kdf: Kdf = {
    name: 'PBKDF2',
    hash: 'SHA-256',
    iterations: 600_000,
    salt: toBase64(crypto.getRandomValues(new Uint8Array(16))),
    cipher: 'AES-GCM-256',
  }
  const nonce = crypto.getRandomValues(new Uint8Array(12)) // never reused: a new one per upload
  const key = await deriveKey(passphrase, kdf)
  const plaintext = new TextEncoder().encode(JSON.stringify(state))
  const ciphertext = new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv: nonce }, key, plaintext))
  return { ciphertext: toBase64(ciphertext), nonce: toBase64(nonce), kdf }
}

function readKdf(value: unknown): Kdf {
  const k = record(value, 'kdf')
  if (k.name !== 'PBKDF2' || k.hash !== 'SHA-256' || k.cipher !== 'AES-GCM-256') {
    throw new Error('backup made with key-derivation parameters this app does not know')
  }
  return {
    name: k.name,
    hash: k.hash,
    cipher: k.cipher,
    iterations: integer(k.iterations, 'kdf.iterations'),
    salt: text(k.salt, 'kdf.salt'),
  }
}

function stored(value: unknown, what: string): StoredBackup {
  const b = record(value, what)
  return {
    version: integer(b.version, 'version'),
    sizeBytes: integer(b.size_bytes, 'size_bytes'),
    createdAt: text(b.created_at, 'created_at'),
  }
}

// == upload, download, restore ==

/**
 * Upload the state as the next version. `lastSeenVersion` is the newest version this device
 * knows (0 before the first backup); if another device uploaded since, the server refuses with
 * PT409 (HTTP 409) and the app downloads, merges and uploads again.
 */
export async function uploadBackup(state: unknown, passphrase: string, lastSeenVersion: number) {
  const sealed = await seal(state, passphrase)
  const { data, error } = await supabase.rpc('upload_backup', {
    p_ciphertext: sealed.ciphertext,
    p_nonce: sealed.nonce,
    p_kdf: sealed.kdf,
    p_if_version: lastSeenVersion,
  })
  if (error?.code === 'PT409') return { conflict: true as const, message: error.message }
  if (error) throw error // PT413 (HTTP 413): larger than the plan's backup_max_bytes
  return { conflict: false as const, backup: stored(data, 'upload_backup') }
}

/** Download and decrypt a kept version (the newest when `version` is omitted). */
export async function restoreOnThisDevice(passphrase: string, version?: number) {
  const { data, error } = await supabase.rpc('get_backup', version === undefined ? {} : { p_version: version })
  if (error) throw error // PT404: no backup yet, or that version is no longer kept
  const backup = record(data, 'get_backup')
  const key = await deriveKey(passphrase, readKdf(backup.kdf))
  const plaintext = await crypto.subtle.decrypt(
    { name: 'AES-GCM', iv: fromBase64(text(backup.nonce, 'nonce')) },
    key,
    fromBase64(text(backup.ciphertext, 'ciphertext')),
  ) // throws OperationError on a wrong passphrase: the server cannot tell
  const state: unknown = JSON.parse(new TextDecoder().decode(plaintext))
  return {
    state,
    version: integer(backup.version, 'version'),
    restoredFrom: backup.restored_from === null ? null : integer(backup.restored_from, 'restored_from'),
    createdAt: optionalText(backup.created_at, 'created_at'),
  }
}

/** Make an older kept version the newest again (copied as a new version, so other devices see it). */
export async function rollBackTo(version: number, lastSeenVersion: number) {
  const { data, error } = await supabase.rpc('restore_backup', { p_version: version, p_if_version: lastSeenVersion })
  if (error) throw error // PT404 version not kept, PT409 someone uploaded since
  return stored(data, 'restore_backup')
}

/** The kept versions, newest first (free plan 3, pro 30). */
export async function listBackups() {
  const { data, error } = await supabase
    .from('backups')
    .select('version, size_bytes, restored_from, created_at')
    .order('version', { ascending: false })
  if (error) throw error
  const versions: Pick<Tables<'backups'>, 'version' | 'size_bytes' | 'restored_from' | 'created_at'>[] = data
  return versions
}
