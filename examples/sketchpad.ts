// Music sketchpad: anonymous-first users, loops and songs as documents, import of
// the library kept in local storage so far, share links and forks.
// Guide: docs/library.md. Every table, column, RPC and argument below is checked by
// `tsc --noEmit -p examples` against the generated supabase/types/database.ts.

import { createClient } from '@supabase/supabase-js'
import type { Database, Tables, TablesInsert } from '../supabase/types/database'
import { integer, list, optionalText, record, text } from './json'

const SUPABASE_URL = 'http://127.0.0.1:54321' // `supabase start`; your project's URL in production
const SUPABASE_ANON_KEY = '<anon or publishable key>'

export const supabase = createClient<Database>(SUPABASE_URL, SUPABASE_ANON_KEY)

type Document = Tables<'documents'>
type Visibility = 'private' | 'unlisted' | 'public'

/** The document columns a client may write (the database maintains owner_id, version, counters, ...). */
type NewDocument = Pick<TablesInsert<'documents'>, 'id' | 'kind' | 'title' | 'body' | 'visibility' | 'local_id'>

/** One chord of a loop's progression. */
export type ChordCell = { bar: number; chord: string; roman: string; root: string; quality: string }
/** One sound on a step of the loop's grid (`note` left out for unpitched sounds such as drums). */
export type IconStep = { step: number; soundId: string; velocity: number; note?: string }

/** A loop as the sketchpad sends it and private.validate_loop accepts it (docs/validation.md). */
export type LoopBody = {
  name: string // 1-100 characters
  length: 1 | 2 | 4 | 8 // bars
  chordProgression: ChordCell[] // at most 64; bar a non-negative integer
  iconSequence: IconStep[] // at most 2048; step a non-negative integer, velocity 0-1
  color: string // "#RRGGBB"
  isPublic: boolean // the document's visibility follows it (public / private)
}

/** A block of a song's timeline: a loop (by document id) from startBar for duration bars. */
export type TimelineBlock = { id: string; loopId: string; startBar: number; duration: number }

/** A song as the sketchpad sends it and private.validate_song accepts it. */
export type SongBody = {
  name: string // 1-100 characters
  bpm: number // 20-300
  timeSignature: '4/4' | '3/4'
  timeline: TimelineBlock[] // at most 1000 blocks, ids unique
  totalBars: number
  isPublic: boolean
}

// == anonymous-first sign-in ==

/** The signed-in user's id: the existing session, or a new anonymous user (no email asked). */
export async function startSession(): Promise<string> {
  const { data: current } = await supabase.auth.getSession()
  if (current.session) return current.session.user.id
  const { data, error } = await supabase.auth.signInAnonymously()
  if (error) throw error
  if (!data.user) throw new Error('anonymous sign-in returned no user')
  return data.user.id
}

// == loops and songs ==

export async function saveLoop(title: string, body: LoopBody) {
  // body.isPublic decides the visibility (true: public, false: private).
  const row: NewDocument = { kind: 'loop', title, body }
  const { data, error } = await supabase.from('documents').insert(row).select('id, version, created_at').single()
  if (error) throw error // 22023 (HTTP 400): the body broke a rule, error.message names the field
  const saved: Pick<Document, 'id' | 'version' | 'created_at'> = data
  return saved
}

export async function saveSong(title: string, loops: { id: string; length: number }[], bpm = 120) {
  let bar = 0
  const timeline: TimelineBlock[] = loops.map((loop, i) => {
    const block = { id: `block-${i + 1}`, loopId: loop.id, startBar: bar, duration: loop.length }
    bar += loop.length
    return block
  })
  const body: SongBody = { name: title, bpm, timeSignature: '4/4', timeline, totalBars: bar, isPublic: false }
  const row: NewDocument = { kind: 'song', title, body }
  const { data, error } = await supabase.from('documents').insert(row).select('id, version').single()
  if (error) throw error
  const saved: Pick<Document, 'id' | 'version'> = data
  return saved
}

/** Save an edit only if nobody changed the loop since `version` (the database bumps it on every change). */
export async function updateLoop(id: string, version: number, body: LoopBody): Promise<number | null> {
  const { data, error } = await supabase
    .from('documents')
    .update({ body })
    .eq('id', id)
    .eq('version', version)
    .select('version')
    .maybeSingle()
  if (error) throw error
  const updated: Pick<Document, 'version'> | null = data
  return updated ? updated.version : null // null: changed elsewhere, reload it
}

/** My newest loops and songs (filter by owner: RLS also shows everyone's public documents). */
export async function myLibrary(userId: string) {
  const { data, error } = await supabase
    .from('documents')
    .select('id, kind, title, body, visibility, version, fork_count, view_count, forked_from, updated_at')
    .eq('owner_id', userId)
    .in('kind', ['loop', 'song'])
    .is('deleted_at', null)
    .order('updated_at', { ascending: false })
    .limit(50)
  if (error) throw error
  const rows: Pick<
    Document,
    | 'id'
    | 'kind'
    | 'title'
    | 'body'
    | 'visibility'
    | 'version'
    | 'fork_count'
    | 'view_count'
    | 'forked_from'
    | 'updated_at'
  >[] = data
  return rows
}

export async function deleteDocument(id: string) {
  const { data, error } = await supabase.rpc('delete_document', { p_id: id })
  if (error) throw error // PT404: not in your library
  const tombstone: Document = data
  return tombstone.deleted_at
}

// == import of the local library ==

type LocalRecord<Body> = { local_id: string; title?: string; body: Body; visibility?: Visibility }
/** Songs refer to loops by the loops' local ids; the import rewrites them to the new ids. */
export type LocalLibrary = { loop: LocalRecord<LoopBody>[]; song: LocalRecord<SongBody>[] }
/** The sketchpad's own export, accepted as it is: each record is its body plus its local id. */
export type SketchpadExport = {
  loops: (LoopBody & { id: string; createdAt?: string; updatedAt?: string })[]
  songs: (SongBody & { id: string; createdAt?: string; updatedAt?: string })[]
}

export type ImportResult = {
  mapping: Map<string, string> // "kind/local_id" -> document id
  created: number
  existing: number
  errors: { kind: string; localId: string | null; code: string; error: string }[]
}

/** Upload what the app kept in localStorage; running it again creates nothing new. */
export async function importLocalLibrary(library: LocalLibrary | SketchpadExport): Promise<ImportResult> {
  const { data, error } = await supabase.rpc('import_local', { p_library: library })
  if (error) throw error // PT429: imports_per_hour used up; 22023: more than 20,000 records
  const answer = record(data, 'import_local')
  const mapping = new Map<string, string>()
  for (const [kind, ids] of Object.entries(record(answer.mapping, 'mapping'))) {
    for (const [localId, id] of Object.entries(record(ids, `mapping.${kind}`))) {
      mapping.set(`${kind}/${localId}`, text(id, 'mapping id'))
    }
  }
  return {
    mapping,
    created: integer(answer.created, 'created'),
    existing: integer(answer.existing, 'existing'),
    errors: list(answer.errors, 'errors').map((item) => {
      const e = record(item, 'error')
      return {
        kind: text(e.kind, 'kind'),
        localId: optionalText(e.local_id, 'local_id'),
        code: text(e.code, 'code'),
        error: text(e.error, 'error'),
      }
    }),
  }
}

// == share and fork ==

/** A share link for one of my documents; the token is shown once (only its hash is stored). */
export async function share(documentId: string, expiresInDays: number | null = 30) {
  const args: Database['public']['Functions']['create_share_link']['Args'] = { p_document_id: documentId }
  if (expiresInDays !== null) args.p_expires_in_days = expiresInDays
  const { data, error } = await supabase.rpc('create_share_link', args)
  if (error) throw error // PT404: not in your library
  const link = record(data, 'create_share_link')
  return {
    id: text(link.id, 'id'),
    token: text(link.token, 'token'),
    expiresAt: optionalText(link.expires_at, 'expires_at'),
  }
}

export async function myShareLinks() {
  const { data, error } = await supabase
    .from('share_links')
    .select('id, document_id, expires_at, revoked_at, open_count, last_opened_at')
    .is('revoked_at', null)
  if (error) throw error
  const links: Pick<
    Tables<'share_links'>,
    'id' | 'document_id' | 'expires_at' | 'revoked_at' | 'open_count' | 'last_opened_at'
  >[] = data
  return links
}

export async function revokeShare(linkId: string) {
  const { error } = await supabase.rpc('revoke_share_link', { p_id: linkId })
  if (error) throw error
}

/** What a visitor (signed in or not) sees behind a share link; counts one view. */
export async function openShare(token: string) {
  // POST (the default): a GET would run read-only and could not count the view.
  const { data, error } = await supabase.rpc('open_share', { p_token: token })
  if (error) throw error // PT404 unknown token (HTTP 404), PT410 expired or revoked (HTTP 410)
  const shared = record(data, 'open_share')
  const document = record(shared.document, 'document')
  const owner = record(shared.owner, 'owner') // every field null unless the owner chose a username
  return {
    id: text(document.id, 'document.id'),
    kind: text(document.kind, 'document.kind'),
    title: text(document.title, 'document.title'),
    body: document.body,
    viewCount: integer(document.view_count, 'document.view_count'),
    owner: optionalText(owner.username, 'owner.username'),
  }
}

/** Copy a public document, or one shared with me, into my library as private. */
export async function fork(documentId: string, shareToken?: string) {
  const { data, error } = await supabase.rpc('fork_document', {
    p_document_id: documentId,
    p_share_token: shareToken,
    p_title: 'My remix',
  })
  if (error) throw error
  const copy: Document = data
  return { id: copy.id, forkedFrom: copy.forked_from, visibility: copy.visibility }
}

/** The compiler refuses what the schema does not have. */
export function refusedShapes(): void {
  // @ts-expect-error fork_document takes p_document_id: a misspelt argument does not compile.
  void supabase.rpc('fork_document', { document_id: 'x' })
  // @ts-expect-error documents has no column "name": the title is `title`.
  void supabase.from('documents').insert({ kind: 'loop', name: 'Intro' })
}
