"""How each family of process reward models reads a solution: its input, and where and how the
score of each step is read from the model's output.

- ``step_tag`` (Math-Shepherd, ``peiyi9979/math-shepherd-mistral-7b-prm``): a causal LM. The input
  is ``f"{question} {step_1} ки\\n{step_2} ки"``; a step's score is the softmax over the logits of
  the good and bad tokens (``+``, ``-``) at its tag, P(good).
- ``qwen_prm`` (``Qwen/Qwen2.5-Math-PRM-7B``): a two-class token head. The input is the chat
  template of Qwen's system prompt, the question and ``"<extra_0>".join(steps) + "<extra_0>"``;
  a step's score is softmax(logits)[1] at its ``<extra_0>``.
- ``rlhflow`` (``RLHFlow/Llama3.1-8B-PRM-Deepseek-Data``, ``-Mistral-Data``): a causal LM trained
  on a conversation whose user turns are the steps (the first one prefixed by the question and a
  space), each answered by an assistant turn ``+`` (right) or ``-`` (wrong). A step's score is
  the softmax over the ``+`` / ``-`` logits at the position that predicts its assistant turn,
  P(+): RLHFlow's ``math-rm/prm_evaluate.py`` reads position -3 of each prefix of the
  conversation; search-and-learn's batched ``RLHFFlow`` reads every turn in one pass over the
  whole conversation. Here too: the turns are rendered with a one-token placeholder (``ки``),
  found, and replaced by ``+`` before the forward pass.
- ``skywork`` (``Skywork/Skywork-o1-Open-PRM-Qwen-2.5-1.5B`` and ``-7B``): a causal LM with a value
  head (``v_head.summary``: hidden size to 1) stored beside its weights. The input ids are those
  of ``bos_token + question + "\\n"``, then, per step, those of the step and the step token
  ``"\\n"``; a step's score is sigmoid(value head(last hidden state)) at its step token.
  SkyworkAI's ``skywork-o1-prm-inference`` (``prepare_input``, ``derive_step_rewards``,
  ``return_probs=True``), as search-and-learn's ``SkyworkO1`` uses it. Its ``encode`` adds no
  special tokens with Qwen's tokenizer; here none are added with any tokenizer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal, NamedTuple

from ttc_agent.errors import ConfigurationError

Family = Literal["step_tag", "qwen_prm", "rlhflow", "skywork"]
FAMILIES: tuple[Family, ...] = ("step_tag", "qwen_prm", "rlhflow", "skywork")
DEFAULT_TAG: dict[str, str] = {
    "step_tag": "ки",
    "qwen_prm": "<extra_0>",
    "rlhflow": "ки",  # a placeholder for the "+" turns, found and replaced
    "skywork": "\n",
}

QWEN_PRM_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."
"""The system prompt Qwen2.5-Math-PRM was trained with."""


class Encoded(NamedTuple):
    """One solution as the model reads it: token ids, and where each step's score is read."""

    ids: list[int]
    reads: list[int]


class PRMFormat:
    """What a family does with a question and its steps; see the module docstring."""

    forward_options: ClassVar[dict[str, Any]] = {"use_cache": False}

    def __init__(self, tokenizer: Any, tag: str) -> None:
        self.tokenizer, self.tag = tokenizer, tag

    def encode(self, question: str, steps: Sequence[str]) -> Encoded:
        """The solution's ids, and for each tag the position its score is read at."""
        raise NotImplementedError

    def probabilities(self, output: Any, rows: Any, columns: Any) -> Any:
        """P(step correct) at each (row, column) of a forward pass's output."""
        raise NotImplementedError

    def _ids(self, text: str, special: bool = False) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=special)["input_ids"])

    def _chat(self, messages: list[dict[str, str]]) -> str:
        if not getattr(self.tokenizer, "chat_template", None):
            raise ConfigurationError("this PRM's tokenizer has no chat template")
        return self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=False
        )


class StepTagFormat(PRMFormat):
    """Math-Shepherd: P(good) over the good and bad tokens' logits at each step tag."""

    def __init__(self, tokenizer: Any, tag: str, good: str, bad: str) -> None:
        super().__init__(tokenizer, tag)
        self.tag_id = tag_token_id(tokenizer, self.text("1", ["2"]), tag)
        good_id = single_token_id(tokenizer, good, "good_token")
        self.classes = [good_id, single_token_id(tokenizer, bad, "bad_token")]

    def text(self, question: str, steps: Sequence[str]) -> str:
        return f"{question} " + "\n".join(f"{step} {self.tag}" for step in steps)

    def encode(self, question: str, steps: Sequence[str]) -> Encoded:
        ids = self._ids(self.text(question, steps), special=True)
        return Encoded(ids, [i for i, token in enumerate(ids) if token == self.tag_id])

    def probabilities(self, output: Any, rows: Any, columns: Any) -> Any:
        pairs = _logits(output)[rows, columns][:, self.classes].float()
        return pairs.softmax(dim=-1)[:, 0]


class RLHFlowFormat(StepTagFormat):
    """RLHFlow: a ``+`` turn after every step; P(+) where that turn is predicted."""

    def text(self, question: str, steps: Sequence[str]) -> str:
        turns = []
        for k, step in enumerate(steps):
            turns.append({"role": "user", "content": f"{question} {step}" if k == 0 else step})
            turns.append({"role": "assistant", "content": self.tag})
        return self._chat(turns)

    def encode(self, question: str, steps: Sequence[str]) -> Encoded:
        ids = self._ids(self.text(question, steps))
        turns = [i for i, token in enumerate(ids) if token == self.tag_id]
        for i in turns:
            ids[i] = self.classes[0]  # the model was trained on "+" turns
        return Encoded(ids, [i - 1 for i in turns])  # the position that predicts the turn


class QwenPRMFormat(PRMFormat):
    """Qwen2.5-Math-PRM: class 1 of the two-class head at each ``<extra_0>``."""

    forward_options: ClassVar[dict[str, Any]] = {}

    def __init__(self, tokenizer: Any, tag: str) -> None:
        super().__init__(tokenizer, tag)
        self.tag_id = tag_token_id(tokenizer, self.text("1", ["2"]), tag)

    def text(self, question: str, steps: Sequence[str]) -> str:
        system = {"role": "system", "content": QWEN_PRM_SYSTEM}
        user = {"role": "user", "content": question}
        return self._chat(
            [system, user, {"role": "assistant", "content": self.tag.join(steps) + self.tag}]
        )

    def encode(self, question: str, steps: Sequence[str]) -> Encoded:
        ids = self._ids(self.text(question, steps))  # the chat template brings its own tokens
        return Encoded(ids, [i for i, token in enumerate(ids) if token == self.tag_id])

    def probabilities(self, output: Any, rows: Any, columns: Any) -> Any:
        logits = _logits(output)
        if logits.shape[-1] != 2:
            raise ConfigurationError(
                f"the model gives {logits.shape[-1]} values per token; the qwen_prm family "
                "needs a two-class head (logits of shape [batch, seq, 2])"
            )
        return logits[rows, columns].float().softmax(dim=-1)[:, 1]


class SkyworkFormat(PRMFormat):
    """Skywork-o1-PRM: sigmoid of the value head at each step token."""

    forward_options: ClassVar[dict[str, Any]] = {"use_cache": False, "output_hidden_states": True}

    def __init__(self, tokenizer: Any, tag: str, head: tuple[Any, Any]) -> None:
        super().__init__(tokenizer, tag)
        self.tag_id = single_token_id(tokenizer, tag, "step_tag")
        self.weight, self.bias = head

    def encode(self, question: str, steps: Sequence[str]) -> Encoded:
        ids = self._ids((self.tokenizer.bos_token or "") + question + "\n")
        reads = []
        for step in steps:
            ids += (self._ids(step) if step else []) + [self.tag_id]
            reads.append(len(ids) - 1)
        return Encoded(ids, reads)

    def probabilities(self, output: Any, rows: Any, columns: Any) -> Any:
        hidden = output.hidden_states[-1][rows, columns].float()
        weight, bias = self.weight.to(hidden.device), self.bias.to(hidden.device)
        return (hidden @ weight.float().T + bias.float()).sigmoid()[:, 0]


def make_format(
    family: Family, tokenizer: Any, tag: str, good: str, bad: str, head: Any = None
) -> PRMFormat:
    """The reader of ``family`` for this tokenizer (Skywork's needs its value head)."""
    if family == "step_tag":
        return StepTagFormat(tokenizer, tag, good, bad)
    if family == "rlhflow":
        return RLHFlowFormat(tokenizer, tag, good, bad)
    if family == "qwen_prm":
        return QwenPRMFormat(tokenizer, tag)
    return SkyworkFormat(tokenizer, tag, head)


def tag_token_id(tokenizer: Any, probe: str, tag: str) -> int:
    """The id the step tag gets in context, checking that it is exactly one known token."""
    if not tag:
        raise ConfigurationError("step_tag must not be empty")
    if not getattr(tokenizer, "is_fast", False):  # no offsets: the tag on its own must do
        return single_token_id(tokenizer, tag, "step_tag")
    start = probe.rfind(tag)
    end = start + len(tag)
    encoded = tokenizer(probe, add_special_tokens=False, return_offsets_mapping=True)
    covering = [
        (token_id, probe[s:e])
        for token_id, (s, e) in zip(encoded["input_ids"], encoded["offset_mapping"], strict=True)
        if s < end and e > start
    ]
    if len(covering) != 1:
        pieces = [piece for _, piece in covering]
        raise ConfigurationError(
            f"step_tag {tag!r} is encoded as {len(covering)} tokens {pieces} by this tokenizer; "
            "a PRM reads its score at one tag token: pass the tag the model was trained with"
        )
    token_id, piece = covering[0]
    if token_id == tokenizer.unk_token_id:
        raise ConfigurationError(f"step_tag {tag!r} is not in the tokenizer's vocabulary")
    if piece.strip() != tag.strip():
        raise ConfigurationError(
            f"step_tag {tag!r} merges with the text around it into the token {piece!r}"
        )
    return int(token_id)


def single_token_id(tokenizer: Any, text: str, what: str) -> int:
    ids = tokenizer.encode(text, add_special_tokens=False)
    if len(ids) != 1:
        raise ConfigurationError(
            f"{what} {text!r} is encoded as {len(ids)} tokens {ids} by this tokenizer; "
            "it must be a single token"
        )
    if ids[0] == tokenizer.unk_token_id:
        raise ConfigurationError(f"{what} {text!r} is not in the tokenizer's vocabulary")
    return int(ids[0])


def _logits(output: Any) -> Any:
    return output.logits if hasattr(output, "logits") else output[0]
