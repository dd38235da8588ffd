"""The FAST action tokenizer (Pertsch et al., 2025): DCT of an action chunk, scaled, rounded, then BPE.

Pi0-FAST loads its action tokenizer with ``AutoProcessor.from_pretrained(name,
trust_remote_code=True)`` (lerobot 0.6.1 ``policies/pi0_fast/modeling_pi0_fast.py:764`` and
``processor/tokenizer_processor.py:379``); on the Hub (``lerobot/fast-action-tokenizer``, before
that ``physical-intelligence/fast``) that is remote code. This module is a local implementation
of the interface LeRobot uses: ``__call__`` (tokenize, tokenizer_processor.py:466),
``bpe_tokenizer.decode``, ``min_token`` and ``scale`` (modeling_pi0_fast.py:1066-1098).

It is self-contained on purpose: :func:`lerobot_cknna.tiny_pi.write_fast_action_tokenizer`
registers it for ``AutoProcessor``, so ``save_pretrained`` copies this file into the tokenizer
directory and names it in ``auto_map``, and transformers imports it from there. Works with transformers 5.5 (``ProcessorMixin``
infers the sub-processor ``bpe_tokenizer`` from ``__init__``'s signature).
"""

import numpy as np
from scipy.fft import dct, idct
from tokenizers import Tokenizer, decoders, models, trainers
from transformers import PreTrainedTokenizerFast
from transformers.processing_utils import ProcessorMixin


class UniversalActionProcessor(ProcessorMixin):
    """Action chunks (T, D) to BPE tokens over their rounded, scaled DCT coefficients, and back.

    Args:
        bpe_tokenizer: BPE over characters ``chr(coefficient - min_token)``.
        scale: DCT coefficients are multiplied by this before rounding (the quantization step).
        vocab_size: size of the BPE vocabulary.
        min_token: the smallest rounded coefficient the BPE alphabet covers.
    """

    attributes = ["bpe_tokenizer"]
    bpe_tokenizer_class = "AutoTokenizer"

    def __init__(
        self, bpe_tokenizer=None, scale: float = 10, vocab_size: int = 1024, min_token: int = 0, **kwargs
    ):
        self.scale = scale
        self.vocab_size = vocab_size
        self.min_token = min_token
        super().__init__(bpe_tokenizer, **kwargs)

    def _coefficients(self, action_chunk: np.ndarray) -> np.ndarray:
        return np.around(dct(np.asarray(action_chunk, dtype=np.float64), axis=-2, norm="ortho") * self.scale)

    def __call__(self, action_chunk) -> list[list[int]]:
        """Token ids of each chunk of a (T, D) or (B, T, D) batch of actions."""
        chunks = np.asarray(action_chunk, dtype=np.float64)
        chunks = chunks[None] if chunks.ndim == 2 else chunks
        tokens = []
        for coefficients in self._coefficients(chunks):
            characters = np.maximum(coefficients.flatten() - self.min_token, 0).astype(int)
            tokens.append(self.bpe_tokenizer("".join(map(chr, characters)))["input_ids"])
        return tokens

    def decode(self, tokens: list[list[int]], *, time_horizon: int, action_dim: int) -> np.ndarray:
        """(B, time_horizon, action_dim) actions from token ids."""
        actions = []
        for sequence in tokens:
            text = self.bpe_tokenizer.decode(sequence)
            coefficients = np.array([ord(character) for character in text], dtype=np.float64) + self.min_token
            actions.append(
                idct(coefficients.reshape(time_horizon, action_dim) / self.scale, axis=0, norm="ortho")
            )
        return np.stack(actions)

    @classmethod
    def fit(
        cls, action_chunks: np.ndarray, scale: float = 10, vocab_size: int = 1024
    ) -> "UniversalActionProcessor":
        """Train the BPE on (N, T, D) action chunks: its alphabet spans every rounded coefficient seen."""
        coefficients = np.around(
            dct(np.asarray(action_chunks, dtype=np.float64), axis=-2, norm="ortho") * scale
        )
        min_token, max_token = int(coefficients.min()), int(coefficients.max())
        alphabet = [chr(code) for code in range(max_token - min_token + 1)]
        texts = ["".join(map(chr, (chunk.flatten() - min_token).astype(int))) for chunk in coefficients]
        backend = Tokenizer(models.BPE())
        backend.decoder = decoders.Fuse()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size, initial_alphabet=alphabet, special_tokens=[], show_progress=False
        )
        backend.train_from_iterator(texts, trainer=trainer)
        bpe_tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, clean_up_tokenization_spaces=False)
        return cls(bpe_tokenizer, scale=scale, vocab_size=vocab_size, min_token=min_token)
