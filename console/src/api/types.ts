// Wire types: generated from the CE contract (schema.d.ts, `npm run api:generate`), plus the
// Capsule Bus shapes, which the v0.1 contract does not describe (server: api/routes/bus.py).
import type { components } from "./schema";

type S = components["schemas"];
export type User = S["User"];
export type Role = User["role"];
export type AdminSession = S["AdminSession"];
export type Agent = S["Agent"] & { description?: string | null; version?: string | null };
export type RegistrationToken = S["RegistrationToken"];
export type CreatedToken = S["CreateRegistrationTokenResponse"];
export type CapsuleService = S["CapsuleService"];
export type ServiceDetail = S["CapsuleServiceDetail"];
export type HealthReport = S["HealthReport"];
export type ConfigItem = S["ConfigItem"];
export type ActionDefinition = Omit<S["ActionDefinition"], "dangerLevel"> & {
  category?: string | null;
  confirmRequired?: boolean;
  dangerLevel: S["DangerLevel"] | "CRITICAL";
};
export type ActionPrepare = S["ActionPrepareResponse"];
export type Command = S["Command"];
export type CommandDetail = S["CommandDetail"];
export type CommandResult = S["CommandResult"];
export type DashboardSummary = S["DashboardSummary"];
export type AdminMetrics = S["AdminMetrics"];
export type AuditEvent = S["AuditEvent"];
export type Pagination = S["Pagination"];

export interface BusRoute {
  id: string;
  name: string;
  description?: string | null;
  status: "ENABLED" | "DRY_RUN" | "DISABLED";
  match: { eventType: string; sourceServiceCode?: string | null };
  target: { serviceCode: string; actionName: string };
  inputMapping: Record<string, string>;
  filters: { path: string; op: "equals" | "in" | "exists"; value?: unknown }[];
  preApproved: boolean;
  createdAt: string;
  updatedAt: string;
}

export interface BusEvent {
  id: string;
  agentId: string;
  sourceServiceCode: string;
  eventType: string;
  payload: Record<string, unknown> | null;
  correlationId?: string | null;
  depth: number;
  dryRun: boolean;
  routeCount: number;
  occurredAt: string;
  acceptedAt: string;
}

export interface BusAuditEntry {
  id: string;
  eventId?: string;
  routeId?: string | null;
  outcome?: string;
  status?: string;
  reason?: string | null;
  commandId?: string | null;
  createdAt: string;
  [key: string]: unknown;
}
