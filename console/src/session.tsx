// Who is signed in, and what the UI offers them. The server enforces every permission; this
// only hides buttons a role could not use (docs/rbac.md holds the table mirrored here).
import { createContext, useContext } from "react";
import type { AdminSession, Role } from "./api/types";

const WRITE = [
  "tokens:write",
  "agents:write",
  "actions:execute",
  "actions:prepare",
  "commands:write",
  "services:write",
  "maintenance:run",
  "audit:export",
  "diagnostics:read",
  "bus:write",
  "topics:write",
] as const;
const OWNER_ONLY = ["users:admin", "settings:write", "backup:create"] as const;
export type Permission = (typeof WRITE)[number] | (typeof OWNER_ONLY)[number] | "read";

export function roleAllows(role: Role | undefined, permission: Permission): boolean {
  if (!role) return false;
  if (permission === "read") return true;
  if (role === "owner") return true;
  if (role === "operator") return (WRITE as readonly string[]).includes(permission);
  return false;
}

export interface SessionState {
  session: AdminSession;
  signOut: () => void;
}

export const SessionContext = createContext<SessionState | null>(null);

export function useSession(): SessionState {
  const state = useContext(SessionContext);
  if (!state) throw new Error("useSession outside a signed-in console");
  return state;
}

export function useCan(permission: Permission): boolean {
  return roleAllows(useSession().session.user.role, permission);
}
