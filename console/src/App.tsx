import { lazy, Suspense, useCallback, useEffect, useMemo, useState } from "react";
import { Alert, App as AntApp, Button, ConfigProvider, Layout, Menu, Space, Spin, Typography } from "antd";
import enUS from "antd/locale/en_US";
import zhCN from "antd/locale/zh_CN";
import { Navigate, Route, Routes, useLocation, useNavigate } from "react-router-dom";
import { currentSession, logout, whenUnauthorized } from "./api/client";
import type { AdminSession } from "./api/types";
import { useI18n } from "./i18n";
import { LanguageSwitch } from "./components/LanguageSwitch";
import { LiveProvider, useLiveStatus } from "./live";
import { SessionContext } from "./session";
import { LoginPage } from "./pages/LoginPage";

// Every page is its own chunk: the first load carries the shell and the login only.
const DashboardPage = lazy(() => import("./pages/DashboardPage"));
const AgentsPage = lazy(() => import("./pages/AgentsPage"));
const ServicesPage = lazy(() => import("./pages/services/ServicesPage"));
const CommandsPage = lazy(() => import("./pages/CommandsPage"));
const BusPage = lazy(() => import("./pages/BusPage"));
const TopicsPage = lazy(() => import("./pages/topics/TopicsPage"));
const AuditPage = lazy(() => import("./pages/AuditPage"));
const TokensPage = lazy(() => import("./pages/TokensPage"));
const UsersPage = lazy(() => import("./pages/UsersPage"));
const SettingsPage = lazy(() => import("./pages/SettingsPage"));

// Darker status colours than Ant Design's defaults reach WCAG AA contrast on white; the
// alert backgrounds stay the light defaults (derived from these seeds they would turn dark).
const THEME = {
  colorPrimary: "#1f4e8c",
  colorError: "#c41d1f",
  colorErrorBg: "#fff2f0",
  colorErrorBorder: "#ffccc7",
  colorSuccess: "#237804",
  colorSuccessBg: "#f6ffed",
  colorSuccessBorder: "#b7eb8f",
  colorWarning: "#ad4e00",
  colorWarningBg: "#fffbe6",
  colorWarningBorder: "#ffe58f",
};

export const MENU = [
  { path: "/", label: "Dashboard", element: <DashboardPage /> },
  { path: "/agents", label: "Agents", element: <AgentsPage /> },
  { path: "/services", label: "Capsule Services", element: <ServicesPage /> },
  { path: "/commands", label: "Commands", element: <CommandsPage /> },
  { path: "/bus", label: "Capsule Bus", element: <BusPage /> },
  { path: "/topics", label: "Topics", element: <TopicsPage /> },
  { path: "/audit-events", label: "Audit Events", element: <AuditPage /> },
  { path: "/registration-tokens", label: "Registration Tokens", element: <TokensPage /> },
  { path: "/users", label: "Users", element: <UsersPage /> },
  { path: "/settings", label: "Settings", element: <SettingsPage /> },
] as const;

function StreamBanner() {
  const connected = useLiveStatus();
  const { t } = useI18n();
  const [grace, setGrace] = useState(true);
  useEffect(() => {
    const timer = setTimeout(() => setGrace(false), 2500);
    return () => clearTimeout(timer);
  }, []);
  if (connected || grace) return null;
  return (
    <Alert
      type="warning"
      banner
      role="status"
      data-testid="stream-banner"
      message={t("Live updates paused: reconnecting…")}
    />
  );
}

function Shell({ session, onSignOut }: { session: AdminSession; onSignOut: () => void }) {
  const { t } = useI18n();
  const location = useLocation();
  const navigate = useNavigate();
  const selected =
    MENU.filter((m) => m.path !== "/" && location.pathname.startsWith(m.path))[0]?.path ?? "/";
  return (
    <Layout style={{ minHeight: "100vh" }}>
      <a href="#main" className="skip-link">
        {t("Skip to content")}
      </a>
      <Layout.Sider breakpoint="lg" collapsedWidth={0} width={220} theme="dark">
        <div style={{ color: "#fff", fontWeight: 600, fontSize: 18, padding: "16px 20px" }}>Opstage</div>
        <nav aria-label="Main">
          <Menu
            theme="dark"
            mode="inline"
            selectedKeys={[selected]}
            onClick={({ key }) => navigate(key)}
            items={MENU.map((m) => ({ key: m.path, label: t(m.label) }))}
          />
        </nav>
      </Layout.Sider>
      <Layout>
        <Layout.Header
          style={{ background: "#fff", padding: "0 24px", display: "flex", justifyContent: "flex-end", alignItems: "center", gap: 16 }}
        >
          <Space>
            <LanguageSwitch />
            <Typography.Text data-testid="whoami">
              {session.user.displayName || session.user.username} ({session.user.role})
            </Typography.Text>
            <Button size="small" onClick={onSignOut}>
              {t("Sign out")}
            </Button>
          </Space>
        </Layout.Header>
        <StreamBanner />
        <Layout.Content id="main" tabIndex={-1} style={{ padding: 24 }}>
          <main>
            <Suspense fallback={<Spin />}>
              <Routes>
                {MENU.map((m) => (
                  <Route key={m.path} path={m.path === "/" ? "/" : `${m.path}/*`} element={m.element} />
                ))}
                <Route path="/login" element={<Navigate to="/" replace />} />
                <Route path="*" element={<Navigate to="/" replace />} />
              </Routes>
            </Suspense>
          </main>
        </Layout.Content>
      </Layout>
    </Layout>
  );
}

export function App() {
  const { lang } = useI18n();
  const [session, setSession] = useState<AdminSession | null | undefined>(undefined);
  const ended = useCallback(() => setSession(null), []);

  useEffect(() => {
    whenUnauthorized(ended);
    currentSession()
      .then(setSession)
      .catch(() => setSession(null));
  }, [ended]);

  const signOut = useCallback(() => {
    void logout().finally(() => setSession(null));
  }, []);
  const state = useMemo(() => (session ? { session, signOut } : null), [session, signOut]);

  return (
    <ConfigProvider locale={lang === "zh" ? zhCN : enUS} theme={{ token: THEME }}>
      <AntApp>
        {session === undefined ? (
          <Spin style={{ margin: 80 }} />
        ) : state ? (
          <SessionContext.Provider value={state}>
            <LiveProvider onSessionEnded={ended}>
              <Shell session={state.session} onSignOut={signOut} />
            </LiveProvider>
          </SessionContext.Provider>
        ) : (
          <LoginPage onSignedIn={setSession} />
        )}
      </AntApp>
    </ConfigProvider>
  );
}
