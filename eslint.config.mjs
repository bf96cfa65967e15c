import js from "@eslint/js";
import tseslint from "typescript-eslint";
import { layers } from "./eslint.layers.mjs";

export default tseslint.config(
  { ignores: ["node_modules/", "dist/", "out/", "**/*.js", "**/*.mjs", ".cache/"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
      "@typescript-eslint/no-floating-promises": "error",
    },
  },
  ...layers,
);
