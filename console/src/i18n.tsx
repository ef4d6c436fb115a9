// English and 中文. English strings are the keys; the Chinese table translates them, and a
// string missing there shows in English. The choice is remembered in localStorage.
import { createContext, useCallback, useContext, useMemo, useState, type ReactNode } from "react";
import { zh } from "./i18n-zh";

export type Lang = "en" | "zh";
const STORAGE_KEY = "opstage.lang";

function initialLang(): Lang {
  const saved = typeof localStorage !== "undefined" ? localStorage.getItem(STORAGE_KEY) : null;
  if (saved === "en" || saved === "zh") return saved;
  return typeof navigator !== "undefined" && navigator.language.startsWith("zh") ? "zh" : "en";
}

export function translate(lang: Lang, text: string, vars?: Record<string, string | number>): string {
  let out = lang === "zh" ? (zh[text] ?? text) : text;
  for (const [k, v] of Object.entries(vars ?? {})) out = out.replaceAll(`{${k}}`, String(v));
  return out;
}

interface I18n {
  lang: Lang;
  setLang: (lang: Lang) => void;
  t: (text: string, vars?: Record<string, string | number>) => string;
}

const Ctx = createContext<I18n>({
  lang: "en",
  setLang: () => undefined,
  t: (text, vars) => translate("en", text, vars),
});

export function I18nProvider({ children, lang: fixed }: { children: ReactNode; lang?: Lang }) {
  const [lang, setLangState] = useState<Lang>(fixed ?? initialLang);
  const setLang = useCallback((next: Lang) => {
    localStorage.setItem(STORAGE_KEY, next);
    document.documentElement.lang = next === "zh" ? "zh-CN" : "en";
    setLangState(next);
  }, []);
  const value = useMemo<I18n>(
    () => ({ lang, setLang, t: (text, vars) => translate(lang, text, vars) }),
    [lang, setLang],
  );
  return <Ctx.Provider value={value}>{children}</Ctx.Provider>;
}

export const useI18n = () => useContext(Ctx);
