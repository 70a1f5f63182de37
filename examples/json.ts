// Reading the JSON that jsonb-returning RPCs (and the AI proxy) answer.
//
// The generated types say such an RPC returns `Json`; its shape is documented in
// docs/api.md (the function's `comment on`). These helpers check that shape at run
// time instead of casting, so a changed answer fails loudly where it is read.

export type JsonRecord = { readonly [key: string]: unknown }

export function record(value: unknown, what: string): JsonRecord {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(`${what}: expected a JSON object`)
  }
  const out: Record<string, unknown> = {}
  for (const [key, item] of Object.entries(value)) out[key] = item
  return out
}

export function list(value: unknown, what: string): unknown[] {
  if (!Array.isArray(value)) throw new Error(`${what}: expected a JSON array`)
  return value
}

export function text(value: unknown, what: string): string {
  if (typeof value !== 'string') throw new Error(`${what}: expected a string`)
  return value
}

export function optionalText(value: unknown, what: string): string | null {
  return value === null || value === undefined ? null : text(value, what)
}

export function integer(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) throw new Error(`${what}: expected an integer`)
  return value
}

export function bool(value: unknown, what: string): boolean {
  if (typeof value !== 'boolean') throw new Error(`${what}: expected a boolean`)
  return value
}

export function numeric(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new Error(`${what}: expected a number`)
  return value
}
