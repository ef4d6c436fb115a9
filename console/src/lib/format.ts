// Display helpers shared by every page; pure, so component tests cover them directly.

export function shortId(id: string | null | undefined, keep = 8): string {
  if (!id) return "";
  const cut = id.indexOf("_");
  const prefix = cut > 0 && cut < 6 ? id.slice(0, cut + 1) : "";
  const rest = id.slice(prefix.length);
  return rest.length <= keep ? id : `${prefix}${rest.slice(0, keep)}…`;
}

export function formatTime(iso: string | null | undefined, locale?: string): string {
  if (!iso) return "—";
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return iso;
  return at.toLocaleString(locale, {
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });
}

/** "3 s", "2 min 5 s", "1 h 4 min", "2 d 3 h"; milliseconds below a second. */
export function humanDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "—";
  if (ms < 0) ms = 0;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${(ms / 1000).toFixed(s < 10 ? 1 : 0)} s`;
  const units: [number, string][] = [
    [86400, "d"],
    [3600, "h"],
    [60, "min"],
    [1, "s"],
  ];
  const parts: string[] = [];
  let left = s;
  for (const [size, name] of units) {
    if (left >= size) {
      parts.push(`${Math.floor(left / size)} ${name}`);
      left %= size;
    }
    if (parts.length === 2) break;
  }
  return parts.join(" ");
}

export function durationBetween(from?: string | null, to?: string | null): string {
  if (!from || !to) return "—";
  return humanDuration(new Date(to).getTime() - new Date(from).getTime());
}

export function humanBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) return "—";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

const COLORS: Record<string, string> = {
  ONLINE: "green",
  HEALTHY: "green",
  UP: "green",
  SUCCEEDED: "green",
  SUCCESS: "green",
  ACTIVE: "green",
  ENABLED: "green",
  PENDING: "gold",
  RUNNING: "blue",
  DEGRADED: "orange",
  UNHEALTHY: "orange",
  STALE: "orange",
  DRY_RUN: "purple",
  USED: "default",
  UNKNOWN: "default",
  OFFLINE: "default",
  DISABLED: "default",
  EXPIRED: "default",
  CANCELLED: "default",
  FAILED: "red",
  FAILURE: "red",
  DENIED: "red",
  DOWN: "red",
  REVOKED: "red",
  LOW: "green",
  MEDIUM: "orange",
  HIGH: "red",
  CRITICAL: "magenta",
};

export function statusColor(status: string | null | undefined): string {
  return (status && COLORS[status]) || "default";
}

/** The value of a dotted path ("a.b.0.c") inside a JSON value. */
export function pick(value: unknown, path: string): unknown {
  let here: unknown = value;
  for (const part of path.split(".")) {
    if (here === null || typeof here !== "object") return undefined;
    here = (here as Record<string, unknown>)[part];
  }
  return here;
}

/** "{{row.id}}"-style templates filled from a context; whole-value templates keep their type. */
export function fillTemplate(template: unknown, context: Record<string, unknown>): unknown {
  if (typeof template === "string") {
    const whole = /^\{\{\s*([\w.]+)\s*\}\}$/.exec(template);
    if (whole?.[1]) return pick(context, whole[1]);
    return template.replace(/\{\{\s*([\w.]+)\s*\}\}/g, (_, p: string) => {
      const v = pick(context, p);
      return v === undefined || v === null ? "" : String(v);
    });
  }
  if (Array.isArray(template)) return template.map((t) => fillTemplate(t, context));
  if (template && typeof template === "object") {
    return Object.fromEntries(
      Object.entries(template).map(([k, v]) => [k, fillTemplate(v, context)]),
    );
  }
  return template;
}

/** A row action's payload: "$row.path" (the reference's form) or "{{row.path}}" templates. */
export function rowPayload(
  template: Record<string, unknown> | undefined,
  row: Record<string, unknown>,
): Record<string, unknown> {
  const resolve = (value: unknown): unknown => {
    if (typeof value === "string" && value.startsWith("$row.")) return pick(row, value.slice(5));
    if (typeof value === "string") return fillTemplate(value, { row });
    if (Array.isArray(value)) return value.map(resolve);
    if (value && typeof value === "object") {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolve(v)]));
    }
    return value;
  };
  return resolve(template ?? {}) as Record<string, unknown>;
}
