# ruff: noqa: E501 - generated data: the definitions' own text
"""Node classes the preview ComfyUI knows, as ComfyUI 0.3.64 defines them.

Generated from the real server's ``/object_info`` by ``python -m tests.real_comfyui.record
--write-nodes``; the real-server tier checks it still matches. Do not edit by hand. Combo
lists that depend on files (input images, checkpoints) are replaced at validation time.
"""

from typing import Any

COMFYUI_VERSION = "0.3.64"

NODE_CLASSES: dict[str, Any] = {
 "CLIPTextEncode": {
  "input": {
   "required": {
    "clip": [
     "CLIP",
     {
      "tooltip": "The CLIP model used for encoding the text."
     }
    ],
    "text": [
     "STRING",
     {
      "dynamicPrompts": True,
      "multiline": True,
      "tooltip": "The text to be encoded."
     }
    ]
   }
  },
  "output": [
   "CONDITIONING"
  ],
  "output_node": False
 },
 "CheckpointLoaderSimple": {
  "input": {
   "required": {
    "ckpt_name": [
     [],
     {
      "tooltip": "The name of the checkpoint (model) to load."
     }
    ]
   }
  },
  "output": [
   "MODEL",
   "CLIP",
   "VAE"
  ],
  "output_node": False
 },
 "EmptyImage": {
  "input": {
   "required": {
    "batch_size": [
     "INT",
     {
      "default": 1,
      "max": 4096,
      "min": 1
     }
    ],
    "color": [
     "INT",
     {
      "default": 0,
      "display": "color",
      "max": 16777215,
      "min": 0,
      "step": 1
     }
    ],
    "height": [
     "INT",
     {
      "default": 512,
      "max": 16384,
      "min": 1,
      "step": 1
     }
    ],
    "width": [
     "INT",
     {
      "default": 512,
      "max": 16384,
      "min": 1,
      "step": 1
     }
    ]
   }
  },
  "output": [
   "IMAGE"
  ],
  "output_node": False
 },
 "EmptyLatentImage": {
  "input": {
   "required": {
    "batch_size": [
     "INT",
     {
      "default": 1,
      "max": 4096,
      "min": 1,
      "tooltip": "The number of latent images in the batch."
     }
    ],
    "height": [
     "INT",
     {
      "default": 512,
      "max": 16384,
      "min": 16,
      "step": 8,
      "tooltip": "The height of the latent images in pixels."
     }
    ],
    "width": [
     "INT",
     {
      "default": 512,
      "max": 16384,
      "min": 16,
      "step": 8,
      "tooltip": "The width of the latent images in pixels."
     }
    ]
   }
  },
  "output": [
   "LATENT"
  ],
  "output_node": False
 },
 "ImageBlur": {
  "input": {
   "required": {
    "blur_radius": [
     "INT",
     {
      "default": 1,
      "max": 31,
      "min": 1,
      "step": 1
     }
    ],
    "image": [
     "IMAGE",
     {}
    ],
    "sigma": [
     "FLOAT",
     {
      "default": 1.0,
      "max": 10.0,
      "min": 0.1,
      "step": 0.1
     }
    ]
   }
  },
  "output": [
   "IMAGE"
  ],
  "output_node": False
 },
 "ImageInvert": {
  "input": {
   "required": {
    "image": [
     "IMAGE"
    ]
   }
  },
  "output": [
   "IMAGE"
  ],
  "output_node": False
 },
 "ImageScale": {
  "input": {
   "required": {
    "crop": [
     [
      "disabled",
      "center"
     ]
    ],
    "height": [
     "INT",
     {
      "default": 512,
      "max": 16384,
      "min": 0,
      "step": 1
     }
    ],
    "image": [
     "IMAGE"
    ],
    "upscale_method": [
     [
      "nearest-exact",
      "bilinear",
      "area",
      "bicubic",
      "lanczos"
     ]
    ],
    "width": [
     "INT",
     {
      "default": 512,
      "max": 16384,
      "min": 0,
      "step": 1
     }
    ]
   }
  },
  "output": [
   "IMAGE"
  ],
  "output_node": False
 },
 "ImageScaleBy": {
  "input": {
   "required": {
    "image": [
     "IMAGE"
    ],
    "scale_by": [
     "FLOAT",
     {
      "default": 1.0,
      "max": 8.0,
      "min": 0.01,
      "step": 0.01
     }
    ],
    "upscale_method": [
     [
      "nearest-exact",
      "bilinear",
      "area",
      "bicubic",
      "lanczos"
     ]
    ]
   }
  },
  "output": [
   "IMAGE"
  ],
  "output_node": False
 },
 "KSampler": {
  "input": {
   "required": {
    "cfg": [
     "FLOAT",
     {
      "default": 8.0,
      "max": 100.0,
      "min": 0.0,
      "round": 0.01,
      "step": 0.1,
      "tooltip": "The Classifier-Free Guidance scale balances creativity and adherence to the prompt. Higher values result in images more closely matching the prompt however too high values will negatively impact quality."
     }
    ],
    "denoise": [
     "FLOAT",
     {
      "default": 1.0,
      "max": 1.0,
      "min": 0.0,
      "step": 0.01,
      "tooltip": "The amount of denoising applied, lower values will maintain the structure of the initial image allowing for image to image sampling."
     }
    ],
    "latent_image": [
     "LATENT",
     {
      "tooltip": "The latent image to denoise."
     }
    ],
    "model": [
     "MODEL",
     {
      "tooltip": "The model used for denoising the input latent."
     }
    ],
    "negative": [
     "CONDITIONING",
     {
      "tooltip": "The conditioning describing the attributes you want to exclude from the image."
     }
    ],
    "positive": [
     "CONDITIONING",
     {
      "tooltip": "The conditioning describing the attributes you want to include in the image."
     }
    ],
    "sampler_name": [
     [
      "euler",
      "euler_cfg_pp",
      "euler_ancestral",
      "euler_ancestral_cfg_pp",
      "heun",
      "heunpp2",
      "dpm_2",
      "dpm_2_ancestral",
      "lms",
      "dpm_fast",
      "dpm_adaptive",
      "dpmpp_2s_ancestral",
      "dpmpp_2s_ancestral_cfg_pp",
      "dpmpp_sde",
      "dpmpp_sde_gpu",
      "dpmpp_2m",
      "dpmpp_2m_cfg_pp",
      "dpmpp_2m_sde",
      "dpmpp_2m_sde_gpu",
      "dpmpp_2m_sde_heun",
      "dpmpp_2m_sde_heun_gpu",
      "dpmpp_3m_sde",
      "dpmpp_3m_sde_gpu",
      "ddpm",
      "lcm",
      "ipndm",
      "ipndm_v",
      "deis",
      "res_multistep",
      "res_multistep_cfg_pp",
      "res_multistep_ancestral",
      "res_multistep_ancestral_cfg_pp",
      "gradient_estimation",
      "gradient_estimation_cfg_pp",
      "er_sde",
      "seeds_2",
      "seeds_3",
      "sa_solver",
      "sa_solver_pece",
      "ddim",
      "uni_pc",
      "uni_pc_bh2"
     ],
     {
      "tooltip": "The algorithm used when sampling, this can affect the quality, speed, and style of the generated output."
     }
    ],
    "scheduler": [
     [
      "simple",
      "sgm_uniform",
      "karras",
      "exponential",
      "ddim_uniform",
      "beta",
      "normal",
      "linear_quadratic",
      "kl_optimal"
     ],
     {
      "tooltip": "The scheduler controls how noise is gradually removed to form the image."
     }
    ],
    "seed": [
     "INT",
     {
      "control_after_generate": True,
      "default": 0,
      "max": 18446744073709551615,
      "min": 0,
      "tooltip": "The random seed used for creating the noise."
     }
    ],
    "steps": [
     "INT",
     {
      "default": 20,
      "max": 10000,
      "min": 1,
      "tooltip": "The number of steps used in the denoising process."
     }
    ]
   }
  },
  "output": [
   "LATENT"
  ],
  "output_node": False
 },
 "KSamplerAdvanced": {
  "input": {
   "required": {
    "add_noise": [
     [
      "enable",
      "disable"
     ]
    ],
    "cfg": [
     "FLOAT",
     {
      "default": 8.0,
      "max": 100.0,
      "min": 0.0,
      "round": 0.01,
      "step": 0.1
     }
    ],
    "end_at_step": [
     "INT",
     {
      "default": 10000,
      "max": 10000,
      "min": 0
     }
    ],
    "latent_image": [
     "LATENT"
    ],
    "model": [
     "MODEL"
    ],
    "negative": [
     "CONDITIONING"
    ],
    "noise_seed": [
     "INT",
     {
      "control_after_generate": True,
      "default": 0,
      "max": 18446744073709551615,
      "min": 0
     }
    ],
    "positive": [
     "CONDITIONING"
    ],
    "return_with_leftover_noise": [
     [
      "disable",
      "enable"
     ]
    ],
    "sampler_name": [
     [
      "euler",
      "euler_cfg_pp",
      "euler_ancestral",
      "euler_ancestral_cfg_pp",
      "heun",
      "heunpp2",
      "dpm_2",
      "dpm_2_ancestral",
      "lms",
      "dpm_fast",
      "dpm_adaptive",
      "dpmpp_2s_ancestral",
      "dpmpp_2s_ancestral_cfg_pp",
      "dpmpp_sde",
      "dpmpp_sde_gpu",
      "dpmpp_2m",
      "dpmpp_2m_cfg_pp",
      "dpmpp_2m_sde",
      "dpmpp_2m_sde_gpu",
      "dpmpp_2m_sde_heun",
      "dpmpp_2m_sde_heun_gpu",
      "dpmpp_3m_sde",
      "dpmpp_3m_sde_gpu",
      "ddpm",
      "lcm",
      "ipndm",
      "ipndm_v",
      "deis",
      "res_multistep",
      "res_multistep_cfg_pp",
      "res_multistep_ancestral",
      "res_multistep_ancestral_cfg_pp",
      "gradient_estimation",
      "gradient_estimation_cfg_pp",
      "er_sde",
      "seeds_2",
      "seeds_3",
      "sa_solver",
      "sa_solver_pece",
      "ddim",
      "uni_pc",
      "uni_pc_bh2"
     ]
    ],
    "scheduler": [
     [
      "simple",
      "sgm_uniform",
      "karras",
      "exponential",
      "ddim_uniform",
      "beta",
      "normal",
      "linear_quadratic",
      "kl_optimal"
     ]
    ],
    "start_at_step": [
     "INT",
     {
      "default": 0,
      "max": 10000,
      "min": 0
     }
    ],
    "steps": [
     "INT",
     {
      "default": 20,
      "max": 10000,
      "min": 1
     }
    ]
   }
  },
  "output": [
   "LATENT"
  ],
  "output_node": False
 },
 "LoadImage": {
  "input": {
   "required": {
    "image": [
     [],
     {
      "image_upload": True
     }
    ]
   }
  },
  "output": [
   "IMAGE",
   "MASK"
  ],
  "output_node": False
 },
 "LoadImageMask": {
  "input": {
   "required": {
    "channel": [
     [
      "alpha",
      "red",
      "green",
      "blue"
     ]
    ],
    "image": [
     [],
     {
      "image_upload": True
     }
    ]
   }
  },
  "output": [
   "MASK"
  ],
  "output_node": False
 },
 "PreviewImage": {
  "input": {
   "hidden": {
    "extra_pnginfo": "EXTRA_PNGINFO",
    "prompt": "PROMPT"
   },
   "required": {
    "images": [
     "IMAGE"
    ]
   }
  },
  "output": [],
  "output_node": True
 },
 "SaveAnimatedPNG": {
  "input": {
   "hidden": {
    "extra_pnginfo": "EXTRA_PNGINFO",
    "prompt": "PROMPT"
   },
   "required": {
    "compress_level": [
     "INT",
     {
      "default": 4,
      "max": 9,
      "min": 0
     }
    ],
    "filename_prefix": [
     "STRING",
     {
      "default": "ComfyUI"
     }
    ],
    "fps": [
     "FLOAT",
     {
      "default": 6.0,
      "max": 1000.0,
      "min": 0.01,
      "step": 0.01
     }
    ],
    "images": [
     "IMAGE"
    ]
   }
  },
  "output": [],
  "output_node": True
 },
 "SaveAnimatedWEBP": {
  "input": {
   "hidden": {
    "extra_pnginfo": "EXTRA_PNGINFO",
    "prompt": "PROMPT"
   },
   "required": {
    "filename_prefix": [
     "STRING",
     {
      "default": "ComfyUI"
     }
    ],
    "fps": [
     "FLOAT",
     {
      "default": 6.0,
      "max": 1000.0,
      "min": 0.01,
      "step": 0.01
     }
    ],
    "images": [
     "IMAGE"
    ],
    "lossless": [
     "BOOLEAN",
     {
      "default": True
     }
    ],
    "method": [
     [
      "default",
      "fastest",
      "slowest"
     ]
    ],
    "quality": [
     "INT",
     {
      "default": 80,
      "max": 100,
      "min": 0
     }
    ]
   }
  },
  "output": [],
  "output_node": True
 },
 "SaveImage": {
  "input": {
   "hidden": {
    "extra_pnginfo": "EXTRA_PNGINFO",
    "prompt": "PROMPT"
   },
   "required": {
    "filename_prefix": [
     "STRING",
     {
      "default": "ComfyUI",
      "tooltip": "The prefix for the file to save. This may include formatting information such as %date:yyyy-MM-dd% or %Empty Latent Image.width% to include values from nodes."
     }
    ],
    "images": [
     "IMAGE",
     {
      "tooltip": "The images to save."
     }
    ]
   }
  },
  "output": [],
  "output_node": True
 },
 "SaveWEBM": {
  "input": {
   "hidden": {
    "extra_pnginfo": [
     "EXTRA_PNGINFO"
    ],
    "prompt": [
     "PROMPT"
    ]
   },
   "required": {
    "codec": [
     "COMBO",
     {
      "multiselect": False,
      "options": [
       "vp9",
       "av1"
      ]
     }
    ],
    "crf": [
     "FLOAT",
     {
      "default": 32.0,
      "max": 63.0,
      "min": 0,
      "step": 1,
      "tooltip": "Higher crf means lower quality with a smaller file size, lower crf means higher quality higher filesize."
     }
    ],
    "filename_prefix": [
     "STRING",
     {
      "default": "ComfyUI",
      "multiline": False
     }
    ],
    "fps": [
     "FLOAT",
     {
      "default": 24.0,
      "max": 1000.0,
      "min": 0.01,
      "step": 0.01
     }
    ],
    "images": [
     "IMAGE",
     {}
    ]
   }
  },
  "output": [],
  "output_node": True
 },
 "VAEDecode": {
  "input": {
   "required": {
    "samples": [
     "LATENT",
     {
      "tooltip": "The latent to be decoded."
     }
    ],
    "vae": [
     "VAE",
     {
      "tooltip": "The VAE model used for decoding the latent."
     }
    ]
   }
  },
  "output": [
   "IMAGE"
  ],
  "output_node": False
 },
 "VAEEncode": {
  "input": {
   "required": {
    "pixels": [
     "IMAGE"
    ],
    "vae": [
     "VAE"
    ]
   }
  },
  "output": [
   "LATENT"
  ],
  "output_node": False
 }
}
