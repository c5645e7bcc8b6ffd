"""Report outputs: tables (CSV, Markdown, LaTeX, HTML) and figures (PNG, PDF), written atomically."""
