import { Table } from "antd";
import { Link, useNavigate, useParams, useLocation, Route, Routes } from "react-router-dom";
import type { CapsuleService } from "../../api/types";
import { ErrorAlert, PageTitle, ShortId, Status, Time } from "../../components/common";
import { SearchFilter, StatusFilter } from "../../components/Filters";
import { useI18n } from "../../i18n";
import { useServerTable } from "../../lib/useServerTable";
import { ServiceDrawer } from "./ServiceDrawer";

const STATUSES = ["UNKNOWN", "HEALTHY", "UNHEALTHY", "STALE", "OFFLINE"] as const;
const HEALTH = ["UP", "DEGRADED", "DOWN", "UNKNOWN"] as const;

function DrawerRoute() {
  const { serviceId } = useParams();
  const navigate = useNavigate();
  const location = useLocation();
  if (!serviceId) return null;
  return <ServiceDrawer serviceId={serviceId} onClose={() => navigate({ pathname: "/services", search: location.search })} />;
}

export default function ServicesPage() {
  const { t } = useI18n();
  const navigate = useNavigate();
  const location = useLocation();
  const table = useServerTable<CapsuleService>(
    "/api/admin/capsule-services",
    ["status", "healthStatus", "q"],
    ["service.", "agent."],
  );
  return (
    <>
      <PageTitle
        extra={
          <>
            <StatusFilter label={t("Status")} value={table.filters.status} options={STATUSES} onChange={(v) => table.setFilter("status", v)} />
            <StatusFilter label={t("Health")} value={table.filters.healthStatus} options={HEALTH} onChange={(v) => table.setFilter("healthStatus", v)} />
            <SearchFilter label={t("Search")} value={table.filters.q} onChange={(v) => table.setFilter("q", v)} />
          </>
        }
      >
        {t("Capsule Services")}
      </PageTitle>
      <ErrorAlert error={table.error} />
      <Table<CapsuleService>
        rowKey="id"
        loading={table.loading}
        dataSource={table.rows}
        pagination={table.pagination}
        onRow={(row) => ({
          onClick: () => navigate({ pathname: `/services/${row.id}`, search: location.search }),
          style: { cursor: "pointer" },
        })}
        columns={[
          { title: t("Id"), dataIndex: "id", render: (v: string) => <ShortId id={v} /> },
          {
            title: t("Code"),
            dataIndex: "code",
            render: (v: string, row) => (
              <Link to={{ pathname: `/services/${row.id}`, search: location.search }} onClick={(e) => e.stopPropagation()}>
                {v}
              </Link>
            ),
          },
          { title: t("Name"), dataIndex: "name" },
          { title: t("Status"), dataIndex: "status", render: (v: string) => <Status value={v} /> },
          { title: t("Health"), dataIndex: "healthStatus", render: (v: string) => <Status value={v} /> },
          { title: t("Version"), dataIndex: "version" },
          { title: t("Updated"), dataIndex: "lastReportedAt", render: (v: string) => <Time value={v} /> },
        ]}
      />
      <Routes>
        <Route path=":serviceId" element={<DrawerRoute />} />
      </Routes>
    </>
  );
}
