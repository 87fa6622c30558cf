export declare const CHROMIUM: string;
export declare function ensureChromium(): string;
