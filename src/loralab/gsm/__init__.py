"""Easy-to-hard math on GSM-Symbolic: templates and datasets (`templates`, `datasets`), fine-tuning targets
(`solutions`), prompts, answer extraction and sandboxed code execution. See README.md in this folder."""
