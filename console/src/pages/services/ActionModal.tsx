// Running an action: ACTION_PREPARE first (the agent proposes the payload and shows its current
// state), then the form (or its JSON), a confirmation for dangerous actions, and the command
// followed live to its result.
import { useCallback, useEffect, useRef, useState } from "react";
import { Alert, Button, Descriptions, Input, Modal, Space, Spin, Tabs, Tag, Typography } from "antd";
import { get, post } from "../../api/client";
import type { ActionDefinition, ActionPrepare, CommandDetail } from "../../api/types";
import { ErrorAlert, JsonBlock, ShortId, Status } from "../../components/common";
import { ResultView } from "../../components/ResultView";
import { SchemaForm } from "../../components/SchemaForm";
import { useI18n } from "../../i18n";
import { useLive } from "../../live";
import { humanDuration, statusColor } from "../../lib/format";
import { cleanPayload, initialPayload, schemaFields } from "../../lib/schemaFields";

const TERMINAL = new Set(["SUCCEEDED", "FAILED", "EXPIRED", "CANCELLED"]);

export function needsConfirmation(action: ActionDefinition): boolean {
  return (
    action.requiresConfirmation ||
    Boolean(action.confirmRequired) ||
    action.dangerLevel === "HIGH" ||
    action.dangerLevel === "CRITICAL"
  );
}

function useElapsed(running: boolean): number {
  const [start] = useState(() => Date.now());
  const [now, setNow] = useState(start);
  useEffect(() => {
    if (!running) return;
    // A clock for the spinner's label, not a poll: nothing is fetched on this timer.
    const timer = setInterval(() => setNow(Date.now()), 250);
    return () => clearInterval(timer);
  }, [running]);
  return now - start;
}

function Preparing({ onCancel }: { onCancel: () => void }) {
  const { t } = useI18n();
  const elapsed = useElapsed(true);
  return (
    <Space direction="vertical" align="center" style={{ width: "100%", padding: 24 }} data-testid="preparing">
      <Spin />
      <span>{t("Preparing the action…")}</span>
      <Typography.Text type="secondary">{humanDuration(elapsed)}</Typography.Text>
      <Button onClick={onCancel}>{t("Cancel")}</Button>
    </Space>
  );
}

function CommandWatch({
  commandId,
  onRowAction,
}: {
  commandId: string;
  onRowAction: (action: string, payload: Record<string, unknown>) => void;
}) {
  const { t } = useI18n();
  const [command, setCommand] = useState<CommandDetail | null>(null);
  const [error, setError] = useState<unknown>(null);
  const done = command ? TERMINAL.has(command.status) : false;
  const elapsed = useElapsed(!done);
  const load = useCallback(() => {
    get<CommandDetail>(`/api/admin/commands/${commandId}`).then(setCommand, setError);
  }, [commandId]);
  useEffect(load, [load]);
  useLive(["command."], () => !done && load(), 100);
  return (
    <Space direction="vertical" style={{ width: "100%" }} data-testid="command-watch">
      <Space>
        {t("Command")} <ShortId id={commandId} /> {command && <Status value={command.status} />}
        {!done && <Spin size="small" />}
        {!done && <Typography.Text type="secondary">{humanDuration(elapsed)}</Typography.Text>}
      </Space>
      {!done && <Typography.Text type="secondary">{t("Waiting for the agent…")}</Typography.Text>}
      {error ? <Alert type="error" message={String((error as Error).message)} /> : null}
      {command?.result && <ResultView result={command.result} onRowAction={onRowAction} />}
    </Space>
  );
}

export function ActionModal({
  serviceId,
  action,
  preset,
  onClose,
  onOpenAction,
}: {
  serviceId: string;
  action: ActionDefinition;
  preset?: Record<string, unknown>;
  onClose: () => void;
  onOpenAction: (name: string, payload: Record<string, unknown>) => void;
}) {
  const { t } = useI18n();
  const [prepared, setPrepared] = useState<ActionPrepare | null>(null);
  const [prepareError, setPrepareError] = useState<Error | null>(null);
  const [attempt, setAttempt] = useState(0);
  const [payload, setPayload] = useState<Record<string, unknown>>({});
  const [jsonText, setJsonText] = useState("{}");
  const [jsonError, setJsonError] = useState<string | null>(null);
  const [tab, setTab] = useState("form");
  const [formKey, setFormKey] = useState(0);
  const [typed, setTyped] = useState("");
  const [running, setRunning] = useState(false);
  const [runError, setRunError] = useState<Error | null>(null);
  const [commandId, setCommandId] = useState<string | null>(null);
  const cancelled = useRef(false);
  const fields = schemaFields(action.inputSchema);
  const confirm = needsConfirmation(action);

  useEffect(() => {
    cancelled.current = false;
    setPrepared(null);
    setPrepareError(null);
    get<ActionPrepare>(`/api/admin/capsule-services/${serviceId}/actions/${encodeURIComponent(action.name)}`).then(
      (p) => {
        if (cancelled.current) return;
        const start = initialPayload(action.inputSchema, { ...(p.initialPayload ?? {}), ...(preset ?? {}) });
        setPrepared(p);
        setPayload(start);
        setFormKey((k) => k + 1);
        setJsonText(JSON.stringify(start, null, 2));
      },
      (e: Error) => !cancelled.current && setPrepareError(e),
    );
    return () => {
      cancelled.current = true;
    };
  }, [serviceId, action, preset, attempt]);

  const switchTab = (next: string) => {
    if (next === "form") {
      try {
        setPayload(JSON.parse(jsonText) as Record<string, unknown>);
        setFormKey((k) => k + 1);
        setJsonError(null);
      } catch (e) {
        setJsonError((e as Error).message);
        return;
      }
    } else {
      setJsonText(JSON.stringify(payload, null, 2));
    }
    setTab(next);
  };

  const run = async () => {
    let body = payload;
    if (tab === "json") {
      try {
        body = JSON.parse(jsonText) as Record<string, unknown>;
      } catch (e) {
        setJsonError((e as Error).message);
        return;
      }
    }
    setRunning(true);
    setRunError(null);
    try {
      const command = await post<{ id: string }>(
        `/api/admin/capsule-services/${serviceId}/actions/${encodeURIComponent(action.name)}`,
        { payload: cleanPayload(body), confirmation: confirm ? true : undefined },
      );
      setCommandId(command.id);
    } catch (e) {
      setRunError(e as Error);
    } finally {
      setRunning(false);
    }
  };

  const confirmed = !confirm || typed.trim() === action.name;
  const footer = commandId
    ? [<Button key="close" data-testid="action-close" onClick={onClose}>{t("Close")}</Button>]
    : [
        <Button key="cancel" onClick={onClose}>{t("Cancel")}</Button>,
        <Button key="run" type="primary" danger={confirm} disabled={!prepared || !confirmed} loading={running} onClick={run}>
          {t("Run")}
        </Button>,
      ];

  return (
    <Modal
      open
      width={760}
      title={
        <Space>
          {action.label || action.name}
          <Tag color={statusColor(action.dangerLevel)}>{action.dangerLevel}</Tag>
        </Space>
      }
      onCancel={onClose}
      footer={footer}
      destroyOnClose
    >
      {action.description && <Typography.Paragraph type="secondary">{action.description}</Typography.Paragraph>}
      {commandId ? (
        <CommandWatch commandId={commandId} onRowAction={onOpenAction} />
      ) : prepareError ? (
        <Alert
          type="error"
          showIcon
          message={t("Preparing failed")}
          description={prepareError.message}
          action={<Button onClick={() => setAttempt((n) => n + 1)}>{t("Retry")}</Button>}
        />
      ) : !prepared ? (
        <Preparing onCancel={onClose} />
      ) : (
        <Space direction="vertical" style={{ width: "100%" }}>
          {prepared.currentState && Object.keys(prepared.currentState).length > 0 && (
            <Descriptions title={t("Current state")} size="small" bordered column={1}>
              {Object.entries(prepared.currentState).map(([k, v]) => (
                <Descriptions.Item key={k} label={k}>
                  {v === null || v === undefined ? "—" : typeof v === "object" ? JSON.stringify(v) : String(v)}
                </Descriptions.Item>
              ))}
            </Descriptions>
          )}
          <Tabs
            activeKey={tab}
            onChange={switchTab}
            items={[
              {
                key: "form",
                label: t("Form"),
                children: fields.length ? (
                  <SchemaForm key={formKey} fields={fields} value={payload} onChange={setPayload} />
                ) : (
                  <Typography.Text type="secondary">{t("No results")}</Typography.Text>
                ),
              },
              {
                key: "json",
                label: t("JSON"),
                children: (
                  <Input.TextArea
                    aria-label={t("Payload")}
                    value={jsonText}
                    onChange={(e) => setJsonText(e.target.value)}
                    rows={10}
                    style={{ fontFamily: "monospace" }}
                  />
                ),
              },
            ]}
          />
          {jsonError && <Alert type="error" message={jsonError} />}
          {confirm && (
            <Alert
              type="warning"
              showIcon
              message={t("This action is {level}. Type the action name to confirm.", { level: action.dangerLevel })}
              description={
                <Input
                  aria-label={t("Confirm")}
                  placeholder={action.name}
                  value={typed}
                  onChange={(e) => setTyped(e.target.value)}
                  data-testid="confirm-input"
                />
              }
            />
          )}
          {runError && <ErrorAlert error={runError} />}
          {prepared.prepareCommand && (
            <details>
              <summary>ACTION_PREPARE</summary>
              <JsonBlock value={prepared.prepareCommand} />
            </details>
          )}
        </Space>
      )}
    </Modal>
  );
}
