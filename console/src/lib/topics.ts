// Topic-bus helpers for the Topics page; pure, so component tests cover them directly.
// The name rules mirror the server's (domain/topics.py): each fragment [A-Za-z0-9_-]{1,80},
// dots reserved as the separators of the wire name {namespace}.{tenant}.{name}.
import { humanDuration } from "./format";

export const FRAGMENT = /^[A-Za-z0-9_-]{1,80}$/;
export const SUBSCRIPTION_NAME = /^[A-Za-z0-9_.:-]{1,200}$/;
export const MAX_LABELS = 20;
// The server's reserved header prefix; on a DLQ message these say where it came from (ADR 0015).
export const ORIGIN_HEADERS = [
  "opstage.origin.topic",
  "opstage.origin.partition",
  "opstage.origin.offset",
  "opstage.origin.subscription",
  "opstage.dlq.reason",
  "opstage.delivery.count",
] as const;

/** Why a namespace, tenant or name fragment is refused, or null when it is fine. */
export function fragmentProblem(value: string | undefined | null): string | null {
  if (!value) return "required";
  if (value.includes(".")) return "dots are reserved";
  if (value.length > 80) return "at most 80 characters";
  return FRAGMENT.test(value) ? null : "only A-Z, a-z, 0-9, '_' and '-'";
}

export function wireName(namespace: string, tenant: string, name: string): string {
  return `${namespace}.${tenant}.${name}`;
}

/** A topic's retention: "forever" when it has none, else the humanised duration. */
export function humanRetention(ms: number | null | undefined, forever = "forever"): string {
  if (ms === null || ms === undefined) return forever;
  return humanDuration(ms);
}

export interface Problem {
  problem: string; // an English template, the i18n key
  vars?: Record<string, string | number>;
}

/**
 * "team=ops, tier=gold" → {team: "ops", tier: "gold"}. Returns the problem instead when a pair
 * has no "=" or an empty key, a key repeats, or there are more than MAX_LABELS.
 */
export function parseLabels(text: string | undefined | null): Record<string, string> | Problem {
  const labels: Record<string, string> = {};
  const pairs = (text ?? "").split(/[,\n]/).map((p) => p.trim()).filter(Boolean);
  for (const pair of pairs) {
    const cut = pair.indexOf("=");
    const key = cut > 0 ? pair.slice(0, cut).trim() : "";
    if (!key) return { problem: '"{pair}" is not key=value', vars: { pair } };
    if (key in labels) return { problem: '"{key}" is given twice', vars: { key } };
    labels[key] = pair.slice(cut + 1).trim();
  }
  if (Object.keys(labels).length > MAX_LABELS) return { problem: "at most {max} labels", vars: { max: MAX_LABELS } };
  return labels;
}

export const isProblem = (v: unknown): v is Problem =>
  typeof v === "object" && v !== null && typeof (v as Problem).problem === "string";

/** A message's headers split into the server's DLQ origin headers and the publisher's own. */
export function splitHeaders(headers: Record<string, string> | null | undefined): {
  origin: Record<string, string>;
  own: Record<string, string>;
} {
  const origin: Record<string, string> = {};
  const own: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers ?? {})) {
    if (k.startsWith("opstage.")) origin[k] = v;
    else own[k] = v;
  }
  return { origin, own };
}

/** A short one-line preview of any JSON payload for a table cell. */
export function payloadPreview(payload: unknown, max = 80): string {
  const text = typeof payload === "string" ? payload : JSON.stringify(payload);
  if (text === undefined) return "—";
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
