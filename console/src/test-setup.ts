import { cleanup } from "@testing-library/react";
import { afterEach } from "vitest";

// Testing Library unmounts after each test only where the test runner's globals exist, and ours
// are off: without this, a component stays mounted past its test, and Ant Design's form
// debounce timer (setTimeout 0-10 ms) fires after jsdom's window is gone ("window is not
// defined", failing the run at random). Unmounting clears those timers in their effects.
afterEach(() => {
  cleanup();
});

// jsdom lacks what Ant Design measures with.
Object.defineProperty(window, "matchMedia", {
  writable: true,
  value: (query: string) => ({
    matches: false,
    media: query,
    onchange: null,
    addListener: () => undefined,
    removeListener: () => undefined,
    addEventListener: () => undefined,
    removeEventListener: () => undefined,
    dispatchEvent: () => false,
  }),
});
window.getComputedStyle = ((orig) => (el: Element) => orig(el))(window.getComputedStyle);
