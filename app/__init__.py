"""The Gradio app: layout and wiring only (every computation is in fuselip.demo and the package)."""
