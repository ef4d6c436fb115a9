// The one fetch path of the console: the session cookie, the CSRF header on every mutation
// (refreshed and retried once on CSRF_INVALID), the contract's envelope unwrapped, errors as
// ApiError with the server's code.
import type { AdminSession, Pagination } from "./types";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

interface Envelope<T> {
  success: boolean;
  data: T;
  pagination?: Pagination;
  error?: { code: string; message: string; details?: Record<string, unknown> };
}

let csrfToken = "";
let onUnauthorized: () => void = () => undefined;

export function setCsrfToken(token: string): void {
  csrfToken = token;
}

export function whenUnauthorized(handler: () => void): void {
  onUnauthorized = handler;
}

async function send(path: string, init: RequestInit, retry = true): Promise<Response> {
  const method = (init.method ?? "GET").toUpperCase();
  const headers = new Headers(init.headers);
  if (init.body !== undefined && !headers.has("content-type")) {
    headers.set("content-type", "application/json");
  }
  // Sent on reads too: opening an action panel is a GET that creates an ACTION_PREPARE
  // command, and the server asks for the token there.
  if (csrfToken) headers.set("x-csrf-token", csrfToken);
  const response = await fetch(path, { ...init, method, headers, credentials: "same-origin" });
  if (response.status === 403 && retry && !path.endsWith("/auth/csrf")) {
    const body = (await response.clone().json().catch(() => null)) as Envelope<unknown> | null;
    if (body?.error?.code === "CSRF_INVALID") {
      const fresh = await request<{ csrfToken: string }>("/api/admin/auth/csrf");
      setCsrfToken(fresh.data.csrfToken);
      return send(path, init, false);
    }
  }
  return response;
}

async function request<T>(path: string, init: RequestInit = {}): Promise<Envelope<T>> {
  const response = await send(path, init);
  const body = (await response.json().catch(() => null)) as Envelope<T> | null;
  if (!response.ok || !body || body.success === false) {
    const error = body?.error;
    if (response.status === 401 && !path.endsWith("/auth/login")) onUnauthorized();
    throw new ApiError(
      response.status,
      error?.code ?? "REQUEST_ERROR",
      error?.message ?? response.statusText,
      error?.details,
    );
  }
  return body;
}

export type Query = Record<string, string | number | boolean | string[] | undefined | null>;

export function withQuery(path: string, query?: Query): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value === undefined || value === null || value === "") continue;
    if (Array.isArray(value)) value.forEach((v) => params.append(key, v));
    else params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

export async function get<T>(path: string, query?: Query): Promise<T> {
  return (await request<T>(withQuery(path, query))).data;
}

export interface Page<T> {
  items: T[];
  total: number;
  page: number;
  pageSize: number;
}

export async function list<T>(path: string, query?: Query): Promise<Page<T>> {
  const body = await request<T[]>(withQuery(path, query));
  const p = body.pagination;
  return {
    items: body.data,
    total: p?.total ?? body.data.length,
    page: p?.page ?? 1,
    pageSize: p?.pageSize ?? body.data.length,
  };
}

function mutate<T>(method: string, path: string, body?: unknown): Promise<T> {
  const init: RequestInit = { method };
  if (body !== undefined) init.body = JSON.stringify(body);
  return request<T>(path, init).then((e) => e.data);
}

export const post = <T>(path: string, body?: unknown) => mutate<T>("POST", path, body ?? {});
export const patch = <T>(path: string, body: unknown) => mutate<T>("PATCH", path, body);
export const put = <T>(path: string, body: unknown) => mutate<T>("PUT", path, body);
export const del = <T>(path: string) => mutate<T>("DELETE", path);

export async function download(path: string, query?: Query): Promise<Blob> {
  const response = await send(withQuery(path, query), {});
  if (!response.ok) {
    const body = (await response.json().catch(() => null)) as Envelope<unknown> | null;
    throw new ApiError(
      response.status,
      body?.error?.code ?? "REQUEST_ERROR",
      body?.error?.message ?? response.statusText,
    );
  }
  return response.blob();
}

export async function login(username: string, password: string): Promise<AdminSession> {
  const session = await post<AdminSession>("/api/admin/auth/login", { username, password });
  setCsrfToken(session.csrfToken);
  return session;
}

export async function currentSession(): Promise<AdminSession> {
  const session = await get<AdminSession>("/api/admin/auth/me");
  setCsrfToken(session.csrfToken);
  return session;
}

export async function logout(): Promise<void> {
  try {
    await post("/api/admin/auth/logout");
  } finally {
    setCsrfToken("");
  }
}
