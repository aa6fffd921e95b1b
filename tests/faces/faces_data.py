"""Who is in which photo of ../shared/faces, left to right (its README.md)."""

PEOPLE = {
    "alex_lacamoire/alex_lacamoire1.jpg": ["alex"],
    "alex_lacamoire/img1.jpg": ["alex"],
    "biden/biden.jpg": ["biden"],
    "biden/biden2.jpg": ["biden"],
    "groups/obama_and_biden.jpg": ["biden", "obama"],  # a third, half-hidden face may be found
    "groups/two_people.jpg": ["obama", "biden"],
    "kit_harington/john1.jpeg": ["kit"],
    "kit_harington/john2.jpeg": ["kit"],
    "obama/obama.jpg": ["obama"],
    "obama/obama1.jpg": ["obama"],
    "obama/obama2.jpg": ["obama"],
    "rose_leslie/img1.jpg": ["rose"],
    "same-photo/obama-1080p.jpg": ["obama"],
    "same-photo/obama-240p.jpg": ["obama"],
    "same-photo/obama-480p.jpg": ["obama"],
    "same-photo/obama-720p.jpg": ["obama"],
}
