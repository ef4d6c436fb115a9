import { useState } from "react";
import { Alert, App, Button, Form, Input, Modal, Popconfirm, Select, Space, Table } from "antd";
import type { User } from "../api/types";
import { del, patch, post } from "../api/client";
import { ErrorAlert, PageTitle, ShortId, Status } from "../components/common";
import { SearchFilter, StatusFilter } from "../components/Filters";
import { useI18n } from "../i18n";
import { useServerTable } from "../lib/useServerTable";
import { useCan, useSession } from "../session";

const ROLES = ["owner", "operator", "viewer"] as const;

export default function UsersPage() {
  const { t } = useI18n();
  const { message } = App.useApp();
  const isOwner = useCan("users:admin");
  const me = useSession().session.user;
  const table = useServerTable<User>("/api/admin/users", ["role", "status", "q"], ["user."]);
  const [creating, setCreating] = useState(false);
  const [resetting, setResetting] = useState<User | null>(null);
  const [form] = Form.useForm();
  const [pwForm] = Form.useForm<{ password: string }>();
  const act = (p: Promise<unknown>) => p.then(table.reload, (e: Error) => message.error(e.message));

  const create = async () => {
    const values = (await form.validateFields()) as Record<string, string>;
    try {
      await post("/api/admin/users", values);
      setCreating(false);
      form.resetFields();
      table.reload();
    } catch (e) {
      message.error((e as Error).message);
    }
  };
  const reset = async () => {
    if (!resetting) return;
    const { password } = await pwForm.validateFields();
    try {
      await post(`/api/admin/users/${resetting.id}/reset-password`, { password });
      setResetting(null);
      pwForm.resetFields();
      message.success(t("Settings saved"));
    } catch (e) {
      message.error((e as Error).message);
    }
  };

  return (
    <>
      <PageTitle
        extra={
          <>
            <StatusFilter label={t("Role")} value={table.filters.role} options={ROLES} onChange={(v) => table.setFilter("role", v)} />
            <StatusFilter label={t("Status")} value={table.filters.status} options={["ACTIVE", "DISABLED"]} onChange={(v) => table.setFilter("status", v)} />
            <SearchFilter label={t("Search")} value={table.filters.q} onChange={(v) => table.setFilter("q", v)} />
            {isOwner && <Button type="primary" onClick={() => setCreating(true)}>{t("New user")}</Button>}
          </>
        }
      >
        {t("Users")}
      </PageTitle>
      {!isOwner && <Alert type="info" showIcon message={t("Only owners manage users.")} style={{ marginBottom: 16 }} />}
      <ErrorAlert error={table.error} />
      <Table<User>
        rowKey="id"
        loading={table.loading}
        dataSource={table.rows}
        pagination={table.pagination}
        columns={[
          { title: t("Id"), dataIndex: "id", render: (v: string) => <ShortId id={v} /> },
          { title: t("Username"), dataIndex: "username" },
          { title: t("Display name"), dataIndex: "displayName" },
          {
            title: t("Role"),
            dataIndex: "role",
            render: (v: User["role"], u) =>
              isOwner && u.id !== me.id ? (
                <Select aria-label={`${t("Role")} ${u.username}`} size="small" value={v} style={{ width: 120 }} options={ROLES.map((r) => ({ value: r, label: r }))} onChange={(role) => act(patch(`/api/admin/users/${u.id}`, { role }))} />
              ) : (
                v
              ),
          },
          { title: t("Status"), dataIndex: "status", render: (v: string) => <Status value={v} /> },
          ...(isOwner
            ? [{
                title: t("Actions"),
                key: "actions",
                render: (_: unknown, u: User) => (
                  <Space>
                    {u.id !== me.id && (
                      <Button size="small" onClick={() => act(patch(`/api/admin/users/${u.id}`, { status: u.status === "ACTIVE" ? "DISABLED" : "ACTIVE" }))}>
                        {u.status === "ACTIVE" ? t("Disable") : t("Enable")}
                      </Button>
                    )}
                    <Button size="small" onClick={() => setResetting(u)}>{t("Reset password")}</Button>
                    {u.id !== me.id && (
                      <Popconfirm title={`${t("Delete")} ${u.username}?`} onConfirm={() => act(del(`/api/admin/users/${u.id}`))}>
                        <Button size="small" danger>{t("Delete")}</Button>
                      </Popconfirm>
                    )}
                  </Space>
                ),
              }]
            : []),
        ]}
      />
      <Modal open={creating} title={t("New user")} onOk={() => void create()} onCancel={() => setCreating(false)} okText={t("Create")}>
        <Form form={form} layout="vertical" initialValues={{ role: "viewer" }}>
          <Form.Item name="username" label={t("Username")} rules={[{ required: true }]}><Input autoComplete="off" /></Form.Item>
          <Form.Item name="displayName" label={t("Display name")}><Input /></Form.Item>
          <Form.Item name="password" label={t("Password")} rules={[{ required: true }, { min: 8 }]}><Input.Password autoComplete="new-password" /></Form.Item>
          <Form.Item name="role" label={t("Role")}><Select options={ROLES.map((r) => ({ value: r, label: r }))} /></Form.Item>
        </Form>
      </Modal>
      <Modal open={Boolean(resetting)} title={`${t("Reset password")}: ${resetting?.username ?? ""}`} onOk={() => void reset()} onCancel={() => setResetting(null)}>
        <Form form={pwForm} layout="vertical">
          <Form.Item name="password" label={t("Password")} rules={[{ required: true }, { min: 8 }]}><Input.Password autoComplete="new-password" /></Form.Item>
        </Form>
      </Modal>
    </>
  );
}
