import { useState } from "react";
import { Alert, Button, Card, Form, Input, Typography } from "antd";
import { login } from "../api/client";
import type { AdminSession } from "../api/types";
import { useI18n } from "../i18n";
import { LanguageSwitch } from "../components/LanguageSwitch";

export function LoginPage({ onSignedIn }: { onSignedIn: (s: AdminSession) => void }) {
  const { t } = useI18n();
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (values: { username: string; password: string }) => {
    setBusy(true);
    setError(null);
    try {
      onSignedIn(await login(values.username, values.password));
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main style={{ minHeight: "100vh", display: "grid", placeItems: "center", background: "#f0f2f5" }}>
      <Card style={{ width: 380 }}>
        <div style={{ display: "flex", justifyContent: "space-between", alignItems: "center" }}>
          <Typography.Title level={1} style={{ fontSize: 22, margin: 0 }}>
            {t("Opstage console")}
          </Typography.Title>
          <LanguageSwitch />
        </div>
        <Form layout="vertical" onFinish={submit} style={{ marginTop: 24 }} requiredMark={false}>
          <Form.Item label={t("Username")} name="username" rules={[{ required: true }]}>
            <Input autoComplete="username" autoFocus />
          </Form.Item>
          <Form.Item label={t("Password")} name="password" rules={[{ required: true }]}>
            <Input.Password autoComplete="current-password" />
          </Form.Item>
          {error && <Alert type="error" showIcon message={error} style={{ marginBottom: 16 }} role="alert" />}
          <Button type="primary" htmlType="submit" block loading={busy}>
            {t("Sign in")}
          </Button>
        </Form>
      </Card>
    </main>
  );
}
