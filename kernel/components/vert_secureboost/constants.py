"""Constants of VertSecureBoost: output columns, metric names and the numeric guards of the trees."""

from __future__ import annotations

from typing import Final

COMPONENT: Final = "VertSecureBoost"

PREDICT_SCORE_COLUMN: Final = "predict_score"
PREDICT_RESULT_COLUMN: Final = "predict_result"

METRIC_NAMESPACE_TRAIN: Final = "train"
METRIC_LOSS: Final = "loss"
METRIC_TREE_SECONDS: Final = "tree_seconds"
# Per tree, each member's seconds per phase: [tree, {phase: seconds}].
METRIC_TREE_PHASES: Final = "tree_phases"
PHASE_ENCRYPT: Final = "encryption"
PHASE_HISTOGRAMS: Final = "histograms"
PHASE_COMPRESS: Final = "compression"
PHASE_DECRYPT: Final = "decryption"
PHASE_SPLITS: Final = "split finding"
PHASE_SEND: Final = "messages sent"
PHASE_WAIT: Final = "waiting for the peer"
METRIC_FEATURE_IMPORTANCE: Final = "feature_importance"

# Owner code of a tree node: a leaf, a split on a promoter feature; provider k's splits use
# OWNER_FIRST_PROVIDER + k.
OWNER_LEAF: Final = -1
OWNER_PROMOTER: Final = 0
OWNER_FIRST_PROVIDER: Final = 1

# A side of a split must hold at least this much hessian besides min_child_weight: it keeps an
# empty side (hessian 0, or a rounding residue of the fixed-point sums) from counting as a child.
MIN_CHILD_HESSIAN: Final = 1e-9

# Probabilities are kept this far from 0 and 1 when the prior log-odds and the loss are taken.
PROBABILITY_EPSILON: Final = 1e-15

# Extra headroom bits of every packed gradient/hessian slot beyond log2(rows): covers the
# two-stage pair histograms (a cell sum, then up to max_bin cells per bin) and rounding.
PACK_EXTRA_HEADROOM_BITS: Final = 2

# The promoter encrypts and sends a tree's gradients and hessians this many drawn rows a
# message (16 MB of ciphertexts with 1024-bit keys, 32 MB with 2048-bit): the promoter's
# driver holds one chunk at a time, and so does a provider's on SPARK, where the chunks go to
# the partitions (a LOCAL provider keeps the tree's ciphertexts in its process).
GH_CHUNK_ROWS: Final = 65_536

# Name of the per-row index column added to a member's rows (never part of an output).
ROW_INDEX_COLUMN: Final = "__weft_secureboost_row"

# Per level, the rows of the open nodes (row index, node position) go from the promoter to
# every provider, and the rows of a provider's chosen nodes (row index, goes left) back, as
# streams of tables of at most this many rows a message (768 KB and 576 KB): neither
# member's driver holds a level's rows in one message.
ROW_STREAM_ROWS: Final = 65_536

# Most packed histogram rows one ciphertext carries after compression, and the spare bits
# per slot that let a shifted row and the next one be added without a carry.
MAX_ROWS_PER_CIPHERTEXT: Final = 16
COMPRESS_HEADROOM_BITS: Final = 1

# The most trees, levels and bins a provider accepts from the promoter's train_setup (the
# bounds of VertSecureBoostParam).
MAX_TREES: Final = 10_000
MAX_DEPTH: Final = 16
MAX_BIN: Final = 1024

# Threads for the Paillier work made of sub-microsecond modular products (grouped sums,
# CRT encryption): gmpy2 releases the GIL around each product, and with two threads the
# handoffs cost more than the products (measured on 2 cores: 2x slower encryption, 1.6x
# slower sums). Exponentiations (compression, decryption) use the `workers` parameter.
PRODUCT_WORKERS: Final = 1

# A histogram of at least this many ciphertext products is split by feature groups over the
# worker processes (`workers` of them): below it, handing the ciphertexts over costs more than
# it saves. Each process gets this many parts, so a core slowed by other work holds up little.
HISTOGRAM_PROCESS_MIN_PRODUCTS: Final = 200_000
HISTOGRAM_PARTS_PER_PROCESS: Final = 2

# Bin thresholds are cut from the rows of the BIN_SAMPLE_ROWS smallest row keys (every row of
# a smaller table), a uniform sample since the keys are hashes of the ids: scikit-learn's
# histogram boosting bins a 200,000-row subsample too. The sample reaches the driver at most
# BIN_SAMPLE_VALUES_PER_PASS values (32 MB) at a time, a few features a pass.
BIN_SAMPLE_ROWS: Final = 200_000
BIN_SAMPLE_VALUES_PER_PASS: Final = 1 << 22

# Split ids a provider hands out are random non-negative integers of this many bits.
SPLIT_ID_BITS: Final = 62

# Importance key of a provider's splits at the promoter (it never learns the feature).
PROVIDER_IMPORTANCE_KEY: Final = "provider:{member_id}"
