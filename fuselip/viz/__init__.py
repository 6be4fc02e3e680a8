"""Pictures shared by the notebooks, the app and the command lines, one subject per module:

preview         contact sheets of training pairs and evaluation items
pictures        enlarge, frame, heatmap overlay, text card, one side of a pair, a grid of pictures
attention       cross-modal attention share per layer, the attention matrix
sequences       token sequences as coloured cells, the joint vocabulary
tokens          a grid tokenizer's codes over the image, highlighted and masked cells, a 1-D token strip
reconstruction  original | tokens | reconstruction, per-token influence maps
charts          training curves, top-1 accuracy per task

PIL pictures come back as (H, W, 3) uint8 arrays (or PIL images for the sheets), matplotlib ones as figures;
matplotlib is imported only when a figure is drawn. Everything is importable from `fuselip.viz` itself.
"""
from fuselip.viz.attention import attention_matrix_figure, cross_modal_share_figure
from fuselip.viz.charts import task_bars_figure, training_curves_figure
from fuselip.viz.pictures import enlarge, frame, heatmap_overlay, image_grid_figure, side_picture, text_card
from fuselip.viz.preview import eval_sheet, pair_sheet
from fuselip.viz.reconstruction import influence_sheet, reconstruction_row, reconstruction_sheet
from fuselip.viz.sequences import sequence_figure, token_kinds, token_label, vocabulary_figure
from fuselip.viz.tokens import code_colour, highlight_cells, masked_cells_image, token_grid_image, token_strip_image

__all__ = [
    "pair_sheet", "eval_sheet",
    "enlarge", "frame", "heatmap_overlay", "text_card", "side_picture", "image_grid_figure",
    "cross_modal_share_figure", "attention_matrix_figure",
    "token_kinds", "token_label", "sequence_figure", "vocabulary_figure",
    "code_colour", "token_grid_image", "highlight_cells", "token_strip_image", "masked_cells_image",
    "reconstruction_row", "reconstruction_sheet", "influence_sheet",
    "training_curves_figure", "task_bars_figure",
]
