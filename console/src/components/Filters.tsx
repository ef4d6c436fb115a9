import { Input, Select } from "antd";
import { useI18n } from "../i18n";

export function StatusFilter({
  label,
  value,
  options,
  onChange,
}: {
  label: string;
  value: string | undefined;
  options: readonly string[];
  onChange: (v: string | undefined) => void;
}) {
  const { t } = useI18n();
  return (
    <Select
      aria-label={label}
      allowClear
      placeholder={label}
      value={value}
      style={{ minWidth: 150 }}
      onChange={(v: string | undefined) => onChange(v)}
      options={options.map((o) => ({ value: o, label: o }))}
      notFoundContent={t("No results")}
    />
  );
}

export function SearchFilter({
  label,
  value,
  onChange,
}: {
  label: string;
  value: string | undefined;
  onChange: (v: string | undefined) => void;
}) {
  return (
    <Input.Search
      aria-label={label}
      placeholder={label}
      allowClear
      defaultValue={value}
      style={{ width: 220 }}
      onSearch={(v) => onChange(v.trim() || undefined)}
    />
  );
}
