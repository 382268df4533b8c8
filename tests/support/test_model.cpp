#include "support/test_model.h"
