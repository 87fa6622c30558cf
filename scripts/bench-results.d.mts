/** See bench-results.mjs: where a bench writes its rows (`<name>.quick.json` for a quick run). */
export declare function benchResultsFile(name: string, quick?: boolean): string;
/** Throws unless every row names its concurrency, suite and frame length (null: no envelope). */
export declare function checkBenchRows(name: string, rows: ReadonlyArray<object>): void;
/** Writes `rows` as the results named `name` (checked; each row given `node` if it has none); the file. */
export declare function writeBenchResults(name: string, rows: ReadonlyArray<object>, quick?: boolean): string;
