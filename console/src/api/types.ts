// Wire types, all generated from the server's committed OpenAPI document (docs/openapi.json →
// schema.d.ts, `npm run api:generate`; ADR 0012). Nothing here is written by hand.
import type { components } from "./schema";

type S = components["schemas"];
export type User = S["User"];
export type Role = User["role"];
export type AdminSession = S["AdminSession"];
export type Agent = S["Agent"];
export type RegistrationToken = S["RegistrationToken"];
export type CreatedToken = S["CreatedRegistrationToken"];
export type CapsuleService = S["CapsuleService"];
export type ServiceDetail = S["CapsuleServiceDetail"];
export type HealthReport = S["HealthReport"];
export type ConfigItem = S["ConfigItem"];
export type ActionDefinition = S["ActionDefinition"];
export type ActionPrepare = S["ActionPrepare"];
export type Command = S["Command"];
export type CommandDetail = S["CommandDetail"];
export type CommandResult = S["CommandResult"];
export type DashboardSummary = S["DashboardSummary"];
export type AdminMetrics = S["AdminMetrics"];
export type AuditEvent = S["AuditEvent"];
export type Pagination = S["Pagination"];
export type BusRoute = S["BusRoute"];
export type BusRouteRequest = S["BusRouteRequest"];
export type BusEvent = S["BusEvent"];
export type BusSimulation = S["BusSimulation"];
export type Topic = S["Topic"];
export type TopicCreateRequest = S["TopicCreateRequest"];
export type TopicSubscription = S["TopicSubscription"];
export type TopicSubscriptionCreateRequest = S["TopicSubscriptionCreateRequest"];
export type PartitionPosition = S["PartitionPosition"];
export type TopicMessages = S["TopicMessages"];
export type TopicMessage = S["TopicMessage"];
export type TopicPartitionBounds = S["TopicPartitionBounds"];
