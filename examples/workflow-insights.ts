// Workflow insights: the user's telemetry consent, and usage events sent in batches
// only while consent is given. Users can read what was collected about them.
// Guide: docs/data-rights.md ("Telemetry and consent"). Every table, column, RPC and
// argument below is checked by `tsc --noEmit -p examples` against the generated
// supabase/types/database.ts.

import { createClient } from '@supabase/supabase-js'
import type { Database, Tables } from '../supabase/types/database'

const SUPABASE_URL = 'http://127.0.0.1:54321' // `supabase start`; your project's URL in production
const SUPABASE_ANON_KEY = '<anon or publishable key>'

export const supabase = createClient<Database>(SUPABASE_URL, SUPABASE_ANON_KEY)

/** One event as ingest_telemetry takes it: a name from telemetry_event_types, props up to 4 KB. */
export type TelemetryEvent = {
  name: string
  at?: string // ISO time on the device, within the last 7 days
  props?: { [key: string]: string | number | boolean | null }
}

/** Events waiting to be sent (a real app keeps them in IndexedDB across restarts). */
const queue: TelemetryEvent[] = []

// == consent ==

/** The user's choice; no row yet means no consent. */
export async function consent(): Promise<boolean> {
  const { data, error } = await supabase.from('privacy_consents').select('telemetry, updated_at').maybeSingle()
  if (error) throw error
  const row: Pick<Tables<'privacy_consents'>, 'telemetry' | 'updated_at'> | null = data
  return row?.telemetry ?? false
}

/** Record the answer to "Help improve the app by sending usage data?" (revocable at any time). */
export async function setConsent(telemetry: boolean) {
  const { data, error } = await supabase.rpc('set_privacy_consent', { telemetry })
  if (error) throw error
  const row: Tables<'privacy_consents'> = data
  if (!row.telemetry) queue.length = 0 // withdrawn: drop what was not sent yet
  return row
}

// == telemetry ==

/** The event names the server accepts (app.opened, feature.used, document.synced, ...). */
export async function knownEvents() {
  const { data, error } = await supabase.from('telemetry_event_types').select('name, description')
  if (error) throw error
  const types: Pick<Tables<'telemetry_event_types'>, 'name' | 'description'>[] = data
  return new Set(types.map((type) => type.name))
}

export function track(name: string, props: TelemetryEvent['props'] = {}) {
  queue.push({ name, at: new Date().toISOString(), props })
}

/**
 * Send queued events in batches of at most 100. A batch with one bad event is refused whole
 * (22023, HTTP 400); without consent 42501 (HTTP 403); over the plan's hourly cap PT429
 * (HTTP 429, the message says when to retry): the batch stays queued.
 */
export async function flush(): Promise<number> {
  let stored = 0
  while (queue.length > 0) {
    const batch = queue.slice(0, 100)
    const { data, error } = await supabase.rpc('ingest_telemetry', { events: batch })
    if (error?.code === '42501') {
      queue.length = 0 // no consent: nothing may be sent
      return stored
    }
    if (error?.code === 'PT429') return stored // retry later
    if (error) throw error
    const count: number = data
    stored += count
    queue.splice(0, batch.length)
  }
  return stored
}

/** What was collected about me (kept 90 days). */
export async function myEvents(since: Date) {
  const { data, error } = await supabase
    .from('telemetry_events')
    .select('id, name, occurred_at, props')
    .gte('occurred_at', since.toISOString())
    .order('occurred_at', { ascending: false })
    .limit(200)
  if (error) throw error
  const events: Pick<Tables<'telemetry_events'>, 'id' | 'name' | 'occurred_at' | 'props'>[] = data
  return events
}
