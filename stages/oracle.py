"""DVC stage `oracle`: GRPO on the target's oracle questions from target SFT: the RL that PaST saves."""

from past import layout
from past.knowledge.format import read_knowledge_set
from past.modeling import load_model, load_tokenizer, save_model
from past.stage import Params, stage
from past.training.grpo import run_grpo


@stage
def main(params: Params) -> None:
    target = read_knowledge_set(layout.TARGET)
    questions = target.questions_in("oracle")
    model, tokenizer = load_model(layout.TARGET_SFT), load_tokenizer(layout.TARGET_SFT)
    run_grpo(model, tokenizer, questions, params.prompt, params.oracle.grpo, params.seed, chat=params.chat,
             tools=target.tools)
    save_model(model, tokenizer, layout.ORACLE)


if __name__ == "__main__":
    main()
