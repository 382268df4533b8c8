#include "engine/model.h"
