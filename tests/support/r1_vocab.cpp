#include "support/r1_vocab.h"
