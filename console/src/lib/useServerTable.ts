// A server-paginated list whose page, page size and filters live in the URL's query string,
// so a filtered view survives reload and can be shared.
import { useCallback, useEffect, useRef, useState } from "react";
import { useSearchParams } from "react-router-dom";
import type { TablePaginationConfig } from "antd";
import { list, type Query } from "../api/client";
import { useLive } from "../live";

export interface ServerTable<T> {
  rows: T[];
  total: number;
  loading: boolean;
  error: unknown;
  filters: Record<string, string | undefined>;
  setFilter: (key: string, value: string | undefined) => void;
  pagination: TablePaginationConfig;
  reload: () => void;
}

export function useServerTable<T>(
  path: string,
  filterKeys: readonly string[],
  livePrefixes: readonly string[],
  fixed?: Query,
): ServerTable<T> {
  const [params, setParams] = useSearchParams();
  const page = Math.max(1, Number(params.get("page")) || 1);
  const pageSize = Math.min(100, Math.max(1, Number(params.get("pageSize")) || 20));
  const filters: Record<string, string | undefined> = {};
  for (const key of filterKeys) filters[key] = params.get(key) ?? undefined;
  const filterKey = JSON.stringify(filters);
  const fixedKey = JSON.stringify(fixed ?? {});
  const [rows, setRows] = useState<T[]>([]);
  const [total, setTotal] = useState(0);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<unknown>(null);
  const seq = useRef(0);

  const load = useCallback(() => {
    const mine = ++seq.current;
    setLoading(true);
    const query: Query = { ...(JSON.parse(fixedKey) as Query), ...(JSON.parse(filterKey) as Query), page, pageSize };
    list<T>(path, query)
      .then((result) => {
        if (mine !== seq.current) return;
        setRows(result.items);
        setTotal(result.total);
        setError(null);
      })
      .catch((e: unknown) => mine === seq.current && setError(e))
      .finally(() => mine === seq.current && setLoading(false));
  }, [path, page, pageSize, filterKey, fixedKey]);

  useEffect(load, [load]);
  useLive(livePrefixes, load);

  const setFilter = (key: string, value: string | undefined) => {
    const next = new URLSearchParams(params);
    if (value) next.set(key, value);
    else next.delete(key);
    next.delete("page");
    setParams(next);
  };

  return {
    rows,
    total,
    loading,
    error,
    filters,
    setFilter,
    reload: load,
    pagination: {
      current: page,
      pageSize,
      total,
      showSizeChanger: true,
      pageSizeOptions: [10, 20, 50, 100],
      onChange: (nextPage, nextSize) => {
        const next = new URLSearchParams(params);
        next.set("page", String(nextPage));
        next.set("pageSize", String(nextSize));
        setParams(next);
      },
    },
  };
}
