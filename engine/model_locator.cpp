#include "engine/model_locator.h"
