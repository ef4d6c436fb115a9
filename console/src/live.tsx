// The console's live feed: one EventSource on /api/admin/events/stream for the whole app.
// Pages subscribe by kind prefix and refetch what they show when something changed; there is
// no polling loop. EventSource reconnects on its own and sends Last-Event-ID, so the server
// replays what was missed; when the browser gives up (CLOSED) we reconnect with ?lastEventId=.
import {
  createContext,
  useContext,
  useEffect,
  useMemo,
  useRef,
  useState,
  type ReactNode,
} from "react";

export const KINDS = [
  "agent.registered",
  "agent.status_changed",
  "agent.credentials_changed",
  "service.reported",
  "service.health_changed",
  "service.status_changed",
  "command.created",
  "command.status_changed",
  "registration_token.changed",
  "audit.recorded",
  "user.changed",
  "bus.event.accepted",
  "bus.route.changed",
  "topic.changed",
  "topic.subscription_changed",
] as const;

export interface LiveEvent {
  id: number;
  kind: string;
  createdAt: string;
  data: Record<string, unknown>;
}

type Listener = (event: LiveEvent | null) => void;

interface Live {
  connected: boolean;
  subscribe: (listener: Listener) => () => void;
}

const LiveContext = createContext<Live>({ connected: true, subscribe: () => () => undefined });
const STREAM = "/api/admin/events/stream";
const RECONNECT_MS = 3000;

export function LiveProvider({
  children,
  onSessionEnded,
}: {
  children: ReactNode;
  onSessionEnded: () => void;
}) {
  const [connected, setConnected] = useState(false);
  const listeners = useRef(new Set<Listener>());
  const ended = useRef(onSessionEnded);
  ended.current = onSessionEnded;

  useEffect(() => {
    let source: EventSource | null = null;
    let lastId: string | null = null;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let stopped = false;
    let wasDown = false;
    const emit = (event: LiveEvent | null) => listeners.current.forEach((l) => l(event));

    const open = () => {
      const url = lastId ? `${STREAM}?lastEventId=${encodeURIComponent(lastId)}` : STREAM;
      source = new EventSource(url, { withCredentials: true });
      source.onopen = () => {
        setConnected(true);
        // Whatever happened while down was replayed by the server, but a page may also have
        // shown an error: let every subscriber refetch once.
        if (wasDown) emit(null);
        wasDown = false;
      };
      source.onerror = () => {
        setConnected(false);
        wasDown = true;
        if (source?.readyState === EventSource.CLOSED && !stopped) {
          source.close();
          timer = setTimeout(open, RECONNECT_MS);
        }
      };
      const onEvent = (message: MessageEvent<string>) => {
        if (message.lastEventId) lastId = message.lastEventId;
        try {
          emit(JSON.parse(message.data) as LiveEvent);
        } catch {
          emit(null);
        }
      };
      for (const kind of KINDS) source.addEventListener(kind, onEvent as EventListener);
      source.addEventListener("ready", ((m: MessageEvent<string>) => {
        if (m.lastEventId) lastId = m.lastEventId;
      }) as EventListener);
      source.addEventListener("gap", ((m: MessageEvent<string>) => {
        if (m.lastEventId) lastId = m.lastEventId;
        emit(null);
      }) as EventListener);
      source.addEventListener("session-ended", () => {
        stopped = true;
        source?.close();
        ended.current();
      });
    };
    open();
    return () => {
      stopped = true;
      clearTimeout(timer);
      source?.close();
    };
  }, []);

  const value = useMemo<Live>(
    () => ({
      connected,
      subscribe: (listener) => {
        listeners.current.add(listener);
        return () => listeners.current.delete(listener);
      },
    }),
    [connected],
  );
  return <LiveContext.Provider value={value}>{children}</LiveContext.Provider>;
}

export const useLiveStatus = () => useContext(LiveContext).connected;

/**
 * Calls `onChange` (coalesced over `delayMs`) when an event whose kind starts with one of
 * `prefixes` arrives, and after a reconnect or a gap (event null).
 */
export function useLive(prefixes: readonly string[], onChange: () => void, delayMs = 250): void {
  const { subscribe } = useContext(LiveContext);
  const callback = useRef(onChange);
  callback.current = onChange;
  const key = prefixes.join(",");
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const wanted = key.split(",");
    const off = subscribe((event) => {
      if (event && !wanted.some((p) => event.kind.startsWith(p))) return;
      clearTimeout(timer);
      timer = setTimeout(() => callback.current(), delayMs);
    });
    return () => {
      clearTimeout(timer);
      off();
    };
  }, [subscribe, key, delayMs]);
}

/** The latest event matching the prefixes (for a live view of one command, say). */
export function useLiveEvents(prefixes: readonly string[], onEvent: (e: LiveEvent) => void): void {
  const { subscribe } = useContext(LiveContext);
  const callback = useRef(onEvent);
  callback.current = onEvent;
  const key = prefixes.join(",");
  useEffect(() => {
    const wanted = key.split(",");
    return subscribe((event) => {
      if (event && wanted.some((p) => event.kind.startsWith(p))) callback.current(event);
    });
  }, [subscribe, key]);
}
