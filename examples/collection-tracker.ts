// Collection tracker: folders and items (documents of kind folder and item), offline
// edits synced with sync_push / sync_pull and conflicts resolved, search over the
// library, item images in bucket `images` under `<uid>/...`.
// Guides: docs/library.md (documents, sync, search), docs/rooms.md (files).
// Every table, column, RPC and argument below is checked by `tsc --noEmit -p examples`
// against the generated supabase/types/database.ts.

import { createClient } from '@supabase/supabase-js'
import type { Database, Tables, TablesInsert } from '../supabase/types/database'
import { bool, integer, list, optionalText, record, text } from './json'

const SUPABASE_URL = 'http://127.0.0.1:54321' // `supabase start`; your project's URL in production
const SUPABASE_ANON_KEY = '<anon or publishable key>'

export const supabase = createClient<Database>(SUPABASE_URL, SUPABASE_ANON_KEY)

type Document = Tables<'documents'>
type NewDocument = Pick<TablesInsert<'documents'>, 'id' | 'kind' | 'title' | 'body' | 'visibility' | 'local_id'>

/** A folder as private.validate_folder accepts it (folders are never public). */
export type FolderBody = { name: string; parent_id?: string | null }
/** An item as private.validate_item accepts it. */
export type ItemBody = {
  name: string // 1-200 characters
  folder_id?: string | null // a folder's id (not looked up: it may be synced later)
  notes?: string // at most 10,000 characters
  tags?: string[]
}

// == folders and items ==

export async function createFolder(name: string) {
  const body: FolderBody = { name }
  const row: NewDocument = { kind: 'folder', title: name, body }
  const { data, error } = await supabase.from('documents').insert(row).select('id').single()
  if (error) throw error
  const folder: Pick<Document, 'id'> = data
  return folder.id
}

export async function addItem(item: ItemBody) {
  // The id may be chosen on the device (offline first): a new random uuid per document.
  const row: NewDocument = { id: crypto.randomUUID(), kind: 'item', title: item.name, body: item }
  const { data, error } = await supabase.from('documents').insert(row).select('id, version').single()
  if (error) throw error // PT403 (HTTP 403): the plan's document limit for items is reached
  const saved: Pick<Document, 'id' | 'version'> = data
  return saved
}

export async function itemsInFolder(userId: string, folderId: string) {
  const { data, error } = await supabase
    .from('documents')
    .select('id, title, body, version, updated_at')
    .eq('owner_id', userId)
    .eq('kind', 'item')
    .eq('body->>folder_id', folderId)
    .is('deleted_at', null)
    .order('title')
  if (error) throw error
  const items: Pick<Document, 'id' | 'title' | 'body' | 'version' | 'updated_at'>[] = data
  return items
}

// == search ==

/** Full-text search over my items: the title weighs most, then every string in the body. */
export async function searchItems(userId: string, words: string) {
  const { data, error } = await supabase
    .from('documents')
    .select('id, title, body')
    .eq('owner_id', userId)
    .eq('kind', 'item')
    .is('deleted_at', null)
    .textSearch('search', words, { type: 'websearch', config: 'english' }) // the kind's text_search_config
    .limit(50)
  if (error) throw error
  const hits: Pick<Document, 'id' | 'title' | 'body'>[] = data
  return hits
}

// == sync ==

/** One offline change as sync_push takes it. */
export type Change = {
  change_id: string // unique per change: a retry with the same id is applied once
  id: string
  kind: 'folder' | 'item'
  op: 'upsert' | 'delete'
  base_version: number | null // the version last pulled; null creates the document
  title?: string
  body?: FolderBody | ItemBody
  visibility?: 'private' | 'unlisted'
}

export type PushResult = {
  changeId: string
  id: string
  status: 'applied' | 'conflict' | 'needs_resolution' | 'rejected'
  version: number | null
  conflictId: string | null
  error: string | null
}

const STATUSES = ['applied', 'conflict', 'needs_resolution', 'rejected'] as const

function pushStatus(value: unknown): PushResult['status'] {
  const found = STATUSES.find((status) => status === value)
  if (!found) throw new Error(`sync_push: unknown status ${String(value)}`)
  return found
}

export async function push(
  changes: Change[],
  strategy: 'server_wins' | 'client_wins' | 'remote_wins' | 'local_wins' | 'manual' = 'manual',
) {
  const { data, error } = await supabase.rpc('sync_push', { p_changes: changes, p_strategy: strategy })
  if (error) throw error // 22023: not an array of at most 5000 changes, or an unknown strategy
  return list(record(data, 'sync_push').results, 'results').map((item): PushResult => {
    const r = record(item, 'result')
    return {
      changeId: text(r.change_id, 'change_id'),
      id: text(r.id, 'id'),
      status: pushStatus(r.status),
      version: r.version === null || r.version === undefined ? null : integer(r.version, 'version'),
      conflictId: optionalText(r.conflict_id, 'conflict_id'),
      error: optionalText(r.error, 'error'), // rejected: `code` is the SQLSTATE (23505 id taken, PT404 not yours)
    }
  })
}

export type PulledChange = {
  id: string
  kind: string
  title: string
  body: unknown
  version: number
  deleted: boolean
}

/** Everything that changed since `cursor` (null: from the start). Store the returned cursor. */
export async function pull(cursor: string | null): Promise<{ changes: PulledChange[]; cursor: string }> {
  const changes: PulledChange[] = []
  let next = cursor
  for (;;) {
    const args: Database['public']['Functions']['sync_pull']['Args'] = { p_limit: 500 }
    if (next !== null) args.p_cursor = next
    const { data, error } = await supabase.rpc('sync_pull', args)
    if (error) throw error // 22023 malformed cursor: start again with null
    const page = record(data, 'sync_pull')
    for (const item of list(page.changes, 'changes')) {
      const c = record(item, 'change')
      changes.push({
        id: text(c.id, 'id'),
        kind: text(c.kind, 'kind'),
        title: text(c.title, 'title'),
        body: c.body,
        version: integer(c.version, 'version'),
        deleted: bool(c.deleted, 'deleted'),
      })
    }
    next = text(page.cursor, 'cursor')
    if (!bool(page.hasMore, 'hasMore')) return { changes, cursor: next }
  }
}

/** Conflicts kept for me to decide (strategy manual or server_wins). */
export async function openConflicts() {
  const { data, error } = await supabase
    .from('sync_conflicts')
    .select('id, document_id, client_title, client_body, client_deleted, server_title, server_body, server_version')
    .eq('status', 'open')
    .order('created_at')
  if (error) throw error
  const conflicts: Pick<
    Tables<'sync_conflicts'>,
    | 'id'
    | 'document_id'
    | 'client_title'
    | 'client_body'
    | 'client_deleted'
    | 'server_title'
    | 'server_body'
    | 'server_version'
  >[] = data
  return conflicts
}

/** Merge two versions of an item: union of the tags, the device's other fields. */
export function mergeItems(mine: ItemBody, theirs: ItemBody): ItemBody {
  const tags = [...new Set([...(theirs.tags ?? []), ...(mine.tags ?? [])])]
  return { ...theirs, ...mine, tags }
}

export async function resolve(conflictId: string, merged: ItemBody | null) {
  const args: Database['public']['Functions']['resolve_conflict']['Args'] = merged
    ? { p_conflict_id: conflictId, p_resolution: 'merged', p_body: merged, p_title: merged.name }
    : { p_conflict_id: conflictId, p_resolution: 'keep_theirs' }
  const { data, error } = await supabase.rpc('resolve_conflict', args)
  if (error) throw error // PT404: resolved already
  const document: Document = data
  return { id: document.id, version: document.version }
}

// == item images ==

/**
 * Upload a photo of an item to `images/<uid>/items/<item id>/<file>` and link it to the item,
 * so the orphaned-file cleanup keeps it. Thumbnails appear beside it as
 * `<name>.thumb150.webp` and `<name>.thumb300.webp`.
 */
export async function attachImage(userId: string, itemId: string, file: File) {
  const path = `${userId}/items/${itemId}/${file.name}`
  const { error: uploadError } = await supabase.storage
    .from('images')
    .upload(path, file, { contentType: file.type, upsert: true })
  if (uploadError) throw uploadError // 403 "storage quota exceeded", 413 over 10 MB, 415 not an image
  const { data, error } = await supabase.rpc('link_document_file', {
    p_document_id: itemId,
    p_bucket_id: 'images',
    p_object_name: path,
  })
  if (error) throw error
  const link: Pick<Tables<'file_links'>, 'id' | 'object_name'> = data
  return link
}

export async function imageUrl(path: string, size: 150 | 300 | null = 300) {
  const name = size === null ? path : `${path}.thumb${size}.webp`
  const { data, error } = await supabase.storage.from('images').createSignedUrl(name, 3600)
  if (error) throw error
  return data.signedUrl
}

/** How much of the plan's storage the uploads use. */
export async function storageUsed() {
  const { data, error } = await supabase.rpc('my_profile').single()
  if (error) throw error
  const profile: Pick<Tables<'profiles'>, 'plan' | 'storage_used'> = data
  return profile
}

/** The body a pulled item document holds, checked before the app trusts it. */
export function itemBody(body: unknown): ItemBody {
  const b = record(body, 'item body')
  const folder = optionalText(b.folder_id, 'folder_id')
  const item: ItemBody = { name: text(b.name, 'name') }
  if (folder !== null) item.folder_id = folder
  if (typeof b.notes === 'string') item.notes = b.notes
  if (Array.isArray(b.tags)) item.tags = b.tags.map((tag) => text(tag, 'tag'))
  return item
}
