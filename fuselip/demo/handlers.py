"""Demo: the app's state (config, model registry, benchmark, embedded galleries) and one handler per tab.

Each handler is a thin call into its tab's module, where the view it returns is defined and computed.
"""
from __future__ import annotations

from typing import Sequence

from fuselip.demo.attention_tab import AttentionTab, AttentionView
from fuselip.demo.benchmark import Benchmark
from fuselip.demo.config import DemoConfig
from fuselip.demo.errors import DemoError
from fuselip.demo.indexes import IndexCache
from fuselip.demo.registry import Registry
from fuselip.demo.search_tabs import RetrievalView, SearchTabs, VQAView
from fuselip.demo.tokens_tab import TokensTab, TokensView


class Demo:
    """The app's state and one method per tab (see the package docstring, fuselip/demo/__init__.py)."""

    def __init__(self, config: DemoConfig | None = None):
        self.config = config or DemoConfig.from_env()
        self.registry = Registry(self.config)
        self.benchmark = Benchmark(self.config)
        self.indexes = IndexCache(self.registry, self.benchmark)
        self._tokens = TokensTab(self.config, self.registry)
        self._attention = AttentionTab(self.config, self.registry)
        self._search = SearchTabs(self.config, self.registry, self.benchmark, self.indexes)

    # ---- choices the layout needs
    def tokenizer_names(self) -> list[str]:
        """Tokenizers for the tokens tab: released ones first (when FUSELIP_MODEL asks for them), then ours."""
        return self.registry.names("released-tokenizer") + self.registry.names("tokenizer-grid", "tokenizer-titok")

    def fuselip_names(self) -> list[str]:
        """FuseLIP models for the attention tab: released ones first (when FUSELIP_MODEL asks for them), then ours."""
        return self.registry.names("released-fuselip") + self.registry.names("fuselip")

    def retrieval_models(self) -> list[tuple[str, str | None]]:
        """(column label, entry key or None) for FuseLIP, SF and MLF."""
        return self.registry.retrieval_models()

    def warm_up(self) -> None:
        """Loads every model and embeds both galleries for the retrieval models (cached on disk after the
        first run). Called in a background thread when the app starts; errors surface later, in the tabs."""
        self.benchmark.load_all()
        for key in self.tokenizer_names() + self.fuselip_names():
            try:
                self.registry.get(key)
            except DemoError:
                pass
        for _, model_key in self.retrieval_models():
            for which in ("images", "answers"):
                if model_key is not None:
                    try:
                        self.indexes.get(model_key, which)
                    except DemoError:
                        pass

    # ---- the tabs
    def tokens(self, tokenizer: str, image, code: str | None = None) -> TokensView:
        """Tab 1, image tokens (fuselip/demo/tokens_tab.py)."""
        return self._tokens.view(tokenizer, image, code)

    def attention(self, model: str, image, text: str, layer: str | None = "mean", head: str | None = "mean",
                  token: str | None = None) -> AttentionView:
        """Tab 2, attention across modalities (fuselip/demo/attention_tab.py)."""
        return self._attention.view(model, image, text, layer, head, token)

    def retrieve(self, image, text: str, gallery: str = "images", k: int | None = None,
                 folder: str = "", uploads: Sequence | None = None) -> RetrievalView:
        """Tab 3, fused-query retrieval (fuselip/demo/search_tabs.py, which says what each gallery is)."""
        return self._search.retrieve(image, text, gallery, k, folder, uploads)

    def vqa(self, image, question: str, k: int | None = None) -> VQAView:
        """Tab 4, the VQA probe (fuselip/demo/search_tabs.py)."""
        return self._search.vqa(image, question, k)
