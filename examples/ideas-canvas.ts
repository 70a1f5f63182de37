// Ideas canvas: collaboration rooms, invites, canvas elements and connections, chat,
// the room's private realtime channel (broadcast and presence), and AI generation
// through the Backline AI proxy with the user's own access token.
// Guides: docs/rooms.md, docs/ai.md. Every table, column, RPC and argument below is
// checked by `tsc --noEmit -p examples` against the generated supabase/types/database.ts.

import { createClient, type RealtimeChannel } from '@supabase/supabase-js'
import type { Database, Tables, TablesInsert } from '../supabase/types/database'
import { integer, numeric, record, text } from './json'

const SUPABASE_URL = 'http://127.0.0.1:54321' // `supabase start`; your project's URL in production
const SUPABASE_ANON_KEY = '<anon or publishable key>'
const AI_PROXY_URL = 'http://127.0.0.1:8787' // `backline ai serve`

export const supabase = createClient<Database>(SUPABASE_URL, SUPABASE_ANON_KEY)

type Element = Tables<'room_elements'>
type ElementKind = 'text' | 'note' | 'image' | 'chat' | 'shape' | 'connector' | 'frame' | 'link'
/** The element columns a client may write (created_by, updated_by, version are the database's). */
type NewElement = Pick<
  TablesInsert<'room_elements'>,
  'room_id' | 'kind' | 'x' | 'y' | 'width' | 'height' | 'z_index' | 'data' | 'image_path'
> & { kind: ElementKind }

// == rooms and invites ==

/** A new room; the creator becomes its owner member. */
export async function createRoom(title: string) {
  const row: Pick<TablesInsert<'rooms'>, 'title' | 'settings'> = { title, settings: { grid: true } }
  const { data, error } = await supabase.from('rooms').insert(row).select('id, title, owner_id').single()
  if (error) throw error
  const room: Pick<Tables<'rooms'>, 'id' | 'title' | 'owner_id'> = data
  return room
}

/** Owner only: an invite link. The token is shown once; only its hash is stored. */
export async function invite(roomId: string, role: 'editor' | 'viewer', maxUses = 5) {
  const { data, error } = await supabase.rpc('create_room_invite', {
    p_room_id: roomId,
    p_role: role,
    p_expires_in: '7 days',
    p_max_uses: maxUses,
  })
  if (error) throw error // 42501 (HTTP 403): only the owner invites
  const [created] = data // a set of one row
  if (!created) throw new Error('create_room_invite returned no invite')
  return {
    inviteId: created.invite_id,
    link: `https://canvas.example/join#${created.token}`,
    expiresAt: created.expires_at,
  }
}

/** Join a room from an invite link (anonymous users too). Returns the room id. */
export async function acceptInvite(token: string) {
  const { data, error } = await supabase.rpc('accept_room_invite', { p_token: token })
  if (error) throw error // PT404 unknown token (HTTP 404), PT410 expired or used up (HTTP 410)
  const roomId: string = data
  return roomId
}

export async function members(roomId: string) {
  const { data, error } = await supabase
    .from('room_members')
    .select('id, user_id, role, joined_at')
    .eq('room_id', roomId)
  if (error) throw error
  const rows: Pick<Tables<'room_members'>, 'id' | 'user_id' | 'role' | 'joined_at'>[] = data
  return rows
}

export async function pendingInvites(roomId: string) {
  // token_hash is not readable: list the other columns explicitly.
  const { data, error } = await supabase
    .from('room_invites')
    .select('id, role, expires_at, max_uses, use_count')
    .eq('room_id', roomId)
  if (error) throw error
  const invites: Pick<Tables<'room_invites'>, 'id' | 'role' | 'expires_at' | 'max_uses' | 'use_count'>[] = data
  return invites
}

// == canvas ==

export async function addNote(roomId: string, textValue: string, x: number, y: number) {
  const row: NewElement = { room_id: roomId, kind: 'note', x, y, width: 200, height: 120, data: { text: textValue } }
  const { data, error } = await supabase.from('room_elements').insert(row).select('id, version').single()
  if (error) throw error // 23514 (HTTP 400): the room holds its plan's maximum of elements
  const added: Pick<Element, 'id' | 'version'> = data
  return added
}

/** Move an element unless someone else changed it since `version`; null means reload it. */
export async function moveElement(id: string, version: number, x: number, y: number): Promise<number | null> {
  const { data, error } = await supabase
    .from('room_elements')
    .update({ x, y })
    .eq('id', id)
    .eq('version', version)
    .select('version')
    .maybeSingle()
  if (error) throw error
  const moved: Pick<Element, 'version'> | null = data
  return moved ? moved.version : null
}

export async function connect(roomId: string, from: string, to: string, label: string) {
  type NewConnection = Pick<
    TablesInsert<'room_element_connections'>,
    'room_id' | 'from_element_id' | 'to_element_id' | 'label'
  >
  const row: NewConnection = { room_id: roomId, from_element_id: from, to_element_id: to, label }
  const { data, error } = await supabase.from('room_element_connections').insert(row).select('id').single()
  if (error) throw error // 23505 (HTTP 409): these two are connected already
  const connection: Pick<Tables<'room_element_connections'>, 'id'> = data
  return connection.id
}

export async function canvas(roomId: string) {
  const [elements, connections] = await Promise.all([
    supabase
      .from('room_elements')
      .select('id, kind, x, y, width, height, z_index, data, image_path, version, updated_by')
      .eq('room_id', roomId)
      .order('z_index'),
    supabase
      .from('room_element_connections')
      .select('id, from_element_id, to_element_id, label')
      .eq('room_id', roomId),
  ])
  if (elements.error) throw elements.error
  if (connections.error) throw connections.error
  const shapes: Pick<
    Element,
    'id' | 'kind' | 'x' | 'y' | 'width' | 'height' | 'z_index' | 'data' | 'image_path' | 'version' | 'updated_by'
  >[] = elements.data
  const lines: Pick<Tables<'room_element_connections'>, 'id' | 'from_element_id' | 'to_element_id' | 'label'>[] =
    connections.data
  return { shapes, lines }
}

/** Lay out a template (SWOT, Brainstorm, Six thinking hats, or a user's own) in the room. */
export async function applyTemplate(roomId: string, templateName: string) {
  const { data: templates, error: findError } = await supabase
    .from('room_templates')
    .select('id, name, kind')
    .eq('name', templateName)
    .is('owner_id', null)
    .limit(1)
  if (findError) throw findError
  const template: Pick<Tables<'room_templates'>, 'id' | 'name' | 'kind'> | undefined = templates[0]
  if (!template) throw new Error(`no built-in template ${templateName}`)
  const { data, error } = await supabase.rpc('apply_template', { p_room_id: roomId, p_template_id: template.id })
  if (error) throw error
  const elementIds: string[] = data
  return elementIds
}

// == chat ==

export async function say(roomId: string, chatElementId: string, content: string) {
  const row: Pick<TablesInsert<'room_chat_messages'>, 'room_id' | 'element_id' | 'role' | 'content'> = {
    room_id: roomId,
    element_id: chatElementId,
    role: 'user', // assistant and system messages are written by the AI side only
    content,
  }
  const { error } = await supabase.from('room_chat_messages').insert(row)
  if (error) throw error // 42501 (HTTP 403): viewers read, owner and editors write
}

export async function chatHistory(chatElementId: string) {
  const { data, error } = await supabase
    .from('room_chat_messages')
    .select('id, author_id, role, content, model, created_at')
    .eq('element_id', chatElementId)
    .order('id')
  if (error) throw error
  const messages: Pick<
    Tables<'room_chat_messages'>,
    'id' | 'author_id' | 'role' | 'content' | 'model' | 'created_at'
  >[] = data
  return messages
}

// == the room channel ==

type Cursor = { x: number; y: number }
type Present = { user_id: string; name: string }

/**
 * Join `room:<room id>` as a private channel: RLS on realtime.messages lets members receive
 * broadcast and presence, and owner and editors send broadcast. Row changes of the canvas
 * arrive as Postgres Changes, filtered by the same RLS (a DELETE carries only the row's id).
 */
export async function joinRoomChannel(
  roomId: string,
  me: Present,
  on: {
    cursor: (from: string, at: Cursor) => void
    people: (present: Present[]) => void
    element: (row: Element | null, deletedId: string | null) => void
  },
): Promise<RealtimeChannel> {
  await supabase.realtime.setAuth() // private channels are authorized with the user's token
  const channel = supabase.channel(`room:${roomId}`, { config: { private: true, presence: { key: me.user_id } } })
  channel
    .on('broadcast', { event: 'cursor' }, ({ payload }) => {
      const p = record(payload, 'cursor')
      on.cursor(text(p.user_id, 'user_id'), { x: numeric(p.x, 'x'), y: numeric(p.y, 'y') })
    })
    .on('presence', { event: 'sync' }, () => {
      const state = channel.presenceState<Present>()
      on.people(Object.values(state).flatMap((entries) => entries.map(({ user_id, name }) => ({ user_id, name }))))
    })
    .on<Element>(
      'postgres_changes',
      { event: '*', schema: 'public', table: 'room_elements', filter: `room_id=eq.${roomId}` },
      (change) => {
        if (change.eventType === 'DELETE') on.element(null, change.old.id ?? null)
        else on.element(change.new, null)
      },
    )
    .subscribe(async (status) => {
      if (status === 'SUBSCRIBED') await channel.track(me)
    })
  return channel
}

export async function sendCursor(channel: RealtimeChannel, userId: string, at: Cursor) {
  await channel.send({ type: 'broadcast', event: 'cursor', payload: { user_id: userId, ...at } })
}

// == AI through the Backline proxy ==

/**
 * Ask a model with the user's stored provider key (or the operator's); with a chat element the
 * answer is also appended to the room's chat as an assistant message.
 */
export async function generate(prompt: string, chatElementId?: string) {
  const { data: auth } = await supabase.auth.getSession()
  if (!auth.session) throw new Error('sign in first: the proxy acts as the signed-in user')
  const { data: keys, error } = await supabase
    .from('ai_keys')
    .select('id, provider, last4, expires_at')
    .eq('provider', 'openai')
    .limit(1)
  if (error) throw error
  const key: Pick<Tables<'ai_keys'>, 'id' | 'provider' | 'last4' | 'expires_at'> | undefined = keys[0]
  const response = await fetch(`${AI_PROXY_URL}/v1/generate`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${auth.session.access_token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({
      provider: 'openai',
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: prompt }],
      max_tokens: 400,
      ...(key ? { key_id: key.id } : {}),
      ...(chatElementId ? { chat_element_id: chatElementId } : {}),
    }),
  })
  const answer: unknown = await response.json()
  if (!response.ok) {
    // {"error": {"status", "message"}}: 402 budget used up, 429 rate limit, 403 viewer, 502 provider down
    const failure = record(record(answer, 'answer').error, 'error')
    throw new Error(`AI proxy ${response.status}: ${text(failure.message, 'message')}`)
  }
  const body = record(answer, 'answer')
  const usage = record(body.usage, 'usage')
  return {
    text: text(body.text, 'text'),
    model: text(body.model, 'model'),
    inputTokens: integer(usage.input_tokens, 'input_tokens'),
    outputTokens: integer(usage.output_tokens, 'output_tokens'),
  }
}
