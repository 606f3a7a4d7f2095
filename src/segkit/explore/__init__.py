"""segkit.explore: the design explorer -- its session (checkpoints -> designs, no UI), the facts
and the exported picture (``view``), the pictures drawn on the page (``drawing``) and the Gradio
page itself (``ui``). The ``explore`` task (``segkit.tasks.explore``) serves it."""
