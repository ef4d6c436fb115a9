import { useState } from "react";
import { Alert, App, Button, Form, Input, InputNumber, Modal, Popconfirm, Space, Table, Typography } from "antd";
import type { CreatedToken, RegistrationToken } from "../api/types";
import { del, post } from "../api/client";
import { ErrorAlert, PageTitle, ShortId, Status, Time } from "../components/common";
import { StatusFilter } from "../components/Filters";
import { useI18n } from "../i18n";
import { useServerTable } from "../lib/useServerTable";
import { useCan } from "../session";

export default function TokensPage() {
  const { t } = useI18n();
  const { message } = App.useApp();
  const canWrite = useCan("tokens:write");
  const table = useServerTable<RegistrationToken>("/api/admin/registration-tokens", ["status"], ["registration_token.", "agent.registered"]);
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState<CreatedToken | null>(null);
  const [form] = Form.useForm<{ name: string; hours?: number }>();

  const create = async () => {
    const values = await form.validateFields();
    try {
      const token = await post<CreatedToken>("/api/admin/registration-tokens", {
        name: values.name,
        expiresInSeconds: values.hours ? Math.round(values.hours * 3600) : undefined,
      });
      setCreating(false);
      form.resetFields();
      setCreated(token);
      table.reload();
    } catch (e) {
      message.error((e as Error).message);
    }
  };
  const act = (promise: Promise<unknown>) => promise.then(table.reload, (e: Error) => message.error(e.message));

  return (
    <>
      <PageTitle
        extra={
          <>
            <StatusFilter label={t("Status")} value={table.filters.status} options={["ACTIVE", "USED", "REVOKED", "EXPIRED"]} onChange={(v) => table.setFilter("status", v)} />
            {canWrite && <Button type="primary" onClick={() => setCreating(true)}>{t("New token")}</Button>}
          </>
        }
      >
        {t("Registration Tokens")}
      </PageTitle>
      <ErrorAlert error={table.error} />
      <Table<RegistrationToken>
        rowKey="id"
        loading={table.loading}
        dataSource={table.rows}
        pagination={table.pagination}
        columns={[
          { title: t("Id"), dataIndex: "id", render: (v: string) => <ShortId id={v} /> },
          { title: t("Name"), dataIndex: "name" },
          { title: t("Status"), dataIndex: "status", render: (v: string) => <Status value={v} /> },
          { title: t("Expires"), dataIndex: "expiresAt", render: (v: string) => <Time value={v} /> },
          { title: t("Used"), dataIndex: "usedAt", render: (v: string) => <Time value={v} /> },
          { title: t("Created"), dataIndex: "createdAt", render: (v: string) => <Time value={v} /> },
          ...(canWrite
            ? [{
                title: t("Actions"),
                key: "actions",
                render: (_: unknown, tok: RegistrationToken) => (
                  <Space>
                    {tok.status === "ACTIVE" && (
                      <Popconfirm title={`${t("Revoke")} ${tok.name}?`} onConfirm={() => act(post(`/api/admin/registration-tokens/${tok.id}/revoke`))}>
                        <Button size="small" danger>{t("Revoke")}</Button>
                      </Popconfirm>
                    )}
                    <Popconfirm title={`${t("Delete")} ${tok.name}?`} onConfirm={() => act(del(`/api/admin/registration-tokens/${tok.id}`))}>
                      <Button size="small">{t("Delete")}</Button>
                    </Popconfirm>
                  </Space>
                ),
              }]
            : []),
        ]}
      />
      <Modal open={creating} title={t("New token")} onOk={() => void create()} onCancel={() => setCreating(false)} okText={t("Create")}>
        <Form form={form} layout="vertical" initialValues={{ name: "", hours: 24 }}>
          <Form.Item name="name" label={t("Name")} rules={[{ required: true }, { max: 120 }]}>
            <Input />
          </Form.Item>
          <Form.Item name="hours" label={t("Expires in (hours)")}>
            <InputNumber min={1} max={24 * 365} />
          </Form.Item>
        </Form>
      </Modal>
      <Modal open={Boolean(created)} title={t("Token created")} onCancel={() => setCreated(null)} footer={<Button data-testid="token-close" onClick={() => setCreated(null)}>{t("Close")}</Button>}>
        {created && (
          <Space direction="vertical" style={{ width: "100%" }}>
            <Alert type="warning" showIcon message={t("Copy this token now. It is shown only once.")} />
            <Typography.Paragraph code copyable={{ text: created.rawToken }} data-testid="raw-token" style={{ wordBreak: "break-all" }}>
              {created.rawToken}
            </Typography.Paragraph>
          </Space>
        )}
      </Modal>
    </>
  );
}
