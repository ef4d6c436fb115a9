import { useCallback, useEffect, useState } from "react";
import { App, Button, Card, Descriptions, Form, InputNumber, Space, Switch, Tabs } from "antd";
import { get, patch, post } from "../api/client";
import { ErrorAlert, JsonBlock, PageTitle } from "../components/common";
import { useI18n } from "../i18n";
import { humanBytes, humanDuration } from "../lib/format";
import { useCan } from "../session";

type Obj = Record<string, unknown>;

/** A value shown for a person: bytes and durations by their key's unit suffix. */
function human(key: string, value: unknown): string {
  if (typeof value === "number") {
    if (/bytes$/i.test(key)) return humanBytes(value);
    if (/ms$/i.test(key)) return humanDuration(value);
    if (/seconds$/i.test(key)) return humanDuration(value * 1000);
  }
  if (value === null || value === undefined) return "—";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

function Flat({ value }: { value: Obj }) {
  return (
    <Descriptions bordered size="small" column={1}>
      {Object.entries(value).map(([k, v]) => (
        <Descriptions.Item key={k} label={k}>
          {v && typeof v === "object" ? <Flat value={v as Obj} /> : human(k, v)}
        </Descriptions.Item>
      ))}
    </Descriptions>
  );
}

function Maintenance() {
  const { t } = useI18n();
  const { message } = App.useApp();
  const canEdit = useCan("settings:write");
  const canRun = useCan("maintenance:run");
  const [values, setValues] = useState<Obj | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [lastRun, setLastRun] = useState<unknown>(null);
  const [form] = Form.useForm();
  const load = useCallback(() => get<Obj>("/api/admin/settings/maintenance").then(setValues, setError), []);
  useEffect(() => void load(), [load]);
  useEffect(() => {
    if (values) form.setFieldsValue(values);
  }, [form, values]);
  const save = async () => {
    const next = form.getFieldsValue() as Obj;
    const changed = Object.fromEntries(Object.entries(next).filter(([k, v]) => values?.[k] !== v));
    try {
      setValues(await patch<Obj>("/api/admin/settings/maintenance", changed));
      message.success(t("Settings saved"));
    } catch (e) {
      message.error((e as Error).message);
    }
  };
  const run = async () => {
    try {
      setLastRun(await post("/api/admin/maintenance/run"));
    } catch (e) {
      message.error((e as Error).message);
    }
  };
  const editable = Object.entries(values ?? {}).filter(([, v]) => typeof v === "number" || typeof v === "boolean");
  return (
    <Space direction="vertical" style={{ width: "100%" }}>
      <ErrorAlert error={error} />
      <Card size="small">
        <Form form={form} layout="horizontal" labelCol={{ span: 10 }} disabled={!canEdit}>
          {editable.map(([k, v]) => (
            <Form.Item key={k} name={k} label={k} valuePropName={typeof v === "boolean" ? "checked" : "value"}>
              {typeof v === "boolean" ? <Switch /> : <InputNumber min={0} style={{ width: 200 }} />}
            </Form.Item>
          ))}
        </Form>
        <Space>
          {canEdit && <Button type="primary" onClick={() => void save()}>{t("Save")}</Button>}
          {canRun && <Button onClick={() => void run()}>{t("Run maintenance now")}</Button>}
        </Space>
      </Card>
      {lastRun ? <JsonBlock value={lastRun} /> : null}
    </Space>
  );
}

function Loaded({ path }: { path: string }) {
  const [value, setValue] = useState<Obj | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => void get<Obj>(path).then(setValue, setError), [path]);
  return (
    <>
      <ErrorAlert error={error} />
      {value && <Flat value={value} />}
    </>
  );
}

function Backup() {
  const { t } = useI18n();
  const [result, setResult] = useState<Obj | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const run = async () => {
    setBusy(true);
    setError(null);
    try {
      setResult(await post<Obj>("/api/admin/backup/sqlite"));
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Space direction="vertical" style={{ width: "100%" }}>
      <Button type="primary" loading={busy} onClick={() => void run()}>{t("Create SQLite backup")}</Button>
      <ErrorAlert error={error} />
      {result && <Flat value={result} />}
    </Space>
  );
}

export default function SettingsPage() {
  const { t } = useI18n();
  const canDiagnose = useCan("diagnostics:read");
  const canBackup = useCan("backup:create");
  return (
    <>
      <PageTitle>{t("Settings")}</PageTitle>
      <Tabs
        items={[
          { key: "maintenance", label: t("Maintenance"), children: <Maintenance /> },
          { key: "metrics", label: t("Metrics"), children: <Loaded path="/api/admin/metrics" /> },
          ...(canDiagnose ? [{ key: "diagnostics", label: t("Diagnostics"), children: <Loaded path="/api/admin/diagnostics/runtime" /> }] : []),
          ...(canBackup ? [{ key: "backup", label: t("Backup"), children: <Backup /> }] : []),
        ]}
      />
    </>
  );
}
