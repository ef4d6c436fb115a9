import { Select } from "antd";
import { useI18n, type Lang } from "../i18n";

export function LanguageSwitch() {
  const { lang, setLang, t } = useI18n();
  return (
    <Select<Lang>
      aria-label={t("Language")}
      value={lang}
      onChange={setLang}
      size="small"
      style={{ width: 100 }}
      options={[
        { value: "en", label: "English" },
        { value: "zh", label: "中文" },
      ]}
    />
  );
}

