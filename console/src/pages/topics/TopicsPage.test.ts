import { describe, expect, it } from "vitest";
import { subscriptionBody } from "./SubscriptionsPanel";
import { topicBody } from "./TopicsPage";

describe("topic forms", () => {
  it("sends the create body the API declares", () => {
    const body = topicBody({
      namespace: " shop ",
      tenant: "default",
      name: "orders",
      partitions: 6,
      replication: 1,
      retention: 7,
      retentionUnit: 86_400_000,
      description: "  ",
      labels: "team=ops, tier=gold",
      auditPublish: true,
    });
    expect(body).toEqual({
      namespace: "shop",
      tenant: "default",
      name: "orders",
      partitions: 6,
      replication: 1,
      retentionMs: 7 * 86_400_000,
      description: null,
      labels: { team: "ops", tier: "gold" },
      auditPublish: true,
    });
  });
  it("sends no retention when none is given", () => {
    const body = topicBody({ namespace: "a", tenant: "b", name: "c", partitions: 3, replication: 1, retention: null, retentionUnit: 60_000, auditPublish: false });
    expect(body.retentionMs).toBeNull();
    expect(body.labels).toEqual({});
  });
  it("sends a subscription without the fields left empty (the server refuses unknown ones)", () => {
    expect(subscriptionBody({ name: " billing ", from: "earliest", dlqTopic: " ", maxDeliveries: undefined })).toEqual({
      topic: null,
      name: "billing",
      from: "earliest",
      maxDeliveries: null,
      dlqTopic: null,
    });
    expect(subscriptionBody({ name: "b", from: "latest", dlqTopic: "shop.default.dlq", maxDeliveries: 5 })).toMatchObject({
      dlqTopic: "shop.default.dlq",
      maxDeliveries: 5,
    });
  });
});
